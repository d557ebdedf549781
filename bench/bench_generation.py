"""Generation throughput: the batched transformers backend vs `model.generate` one prompt at a time.

Prints generated tokens/s of greedy decoding at batch 1, 16, 64 and 256, and the speed-up per token.
"""

from __future__ import annotations

from common import load_policy, median_rate, parser, problems, timed


def main() -> None:
    args = parser(__doc__).parse_args()
    import torch

    from glore_engine.formats import student_prompt
    from glore_engine.generation.hf_backend import TransformersBackend

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok, label = load_policy(args.model)
    prompts = [student_prompt(p.question) for p in problems(256)]
    max_new = 96
    print(f"model: {label}; greedy, max_new_tokens={max_new}, {torch.get_num_threads()} threads")

    # baseline: one generate() call per prompt
    n_base = 16
    tok.padding_side = "left"

    def one_by_one():
        total = 0
        for p in prompts[:n_base]:
            enc = tok(p, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
            total += out.shape[1] - enc.input_ids.shape[1]
        return total

    with torch.inference_mode():
        base_rate = median_rate(lambda: timed(one_by_one), args.repeat)
    print(f"{'model.generate, 1 prompt at a time':40} {base_rate:10,.0f} tokens/s  ({n_base} prompts)")
    for batch in (1, 16, 64, 256):
        n = max(batch, 16)

        def run(batch=batch, n=n):
            backend = TransformersBackend(model, tok, batch_size=batch)
            _, seconds = timed(lambda: backend.generate(prompts[:n], temperature=0.0, max_new_tokens=max_new))
            return backend.stats.generated_tokens, seconds

        rate = median_rate(run, args.repeat)
        print(f"{f'GLoRe backend, batch {batch}':40} {rate:10,.0f} tokens/s  ({n} prompts, x{rate / base_rate:.1f})")


if __name__ == "__main__":
    main()
