"""Reward-model scoring and SORM labelling throughput.

1. One forward pass per solution (read the value head at every step end) vs one pass per prefix.
2. The batched labeller (prefix encoded once, K continuations share it, finished rows dropped)
   vs one `model.generate(num_return_sequences=K)` call per prefix.
"""

from __future__ import annotations

from common import load_policy, median_rate, parser, problems, timed


def reward_model(policy, tok, path):
    from glore_engine.bundled import BUNDLE_DIR, has_bundle
    from glore_engine.models.reward_model import RewardModel, load_reward_model

    if path is None and has_bundle():
        model, tok, _ = load_reward_model(BUNDLE_DIR / "sorm")
        return model, tok
    return RewardModel(policy, tokenizer=tok).eval(), tok


def bench_scoring(rm, tok, solutions, repeat: int) -> None:
    from glore_engine.models.reward_model import RewardScorer
    from glore_engine.tasks.steps import split_steps

    scorer = RewardScorer(rm, tok, batch_size=64)
    items = [(p.question, split_steps(p.solution)) for p in solutions]
    prefixes = [(q, steps[: i + 1]) for q, steps in items for i in range(len(steps))]
    one_pass = median_rate(lambda: (len(items), timed(lambda: scorer.score(items))[1]), repeat)
    per_prefix = median_rate(lambda: (len(items), timed(lambda: scorer.score(prefixes))[1]), repeat)
    print(f"{'scoring, one pass per solution':44} {one_pass:9,.1f} solutions/s")
    print(
        f"{'scoring, one pass per prefix':44} {per_prefix:9,.1f} solutions/s  "
        f"(one pass is x{one_pass / per_prefix:.1f} faster; {len(prefixes)} prefixes)"
    )


def bench_labelling(model, tok, solutions, repeat: int, k: int = 8) -> None:
    import torch

    from glore_engine.generation.hf_backend import TransformersBackend
    from glore_engine.labelling.rollouts import label_solutions, prefix_prompt
    from glore_engine.records import LabelledSolution
    from glore_engine.tasks.steps import split_steps

    sols = [
        LabelledSolution(
            problem_id=p.id,
            question=p.question,
            gold=p.answer,
            text=p.solution,
            steps=split_steps(p.solution),
            correct=True,
        )
        for p in solutions
    ]

    def batched():
        backend = TransformersBackend(model, tok, batch_size=512)
        _, seconds = timed(lambda: label_solutions(backend, sols, k, 1.0, 128, seed=0))
        return backend.stats.samples, backend.stats.generated_tokens, seconds

    runs = [batched() for _ in range(repeat)]
    rollouts = sorted(r / s for r, _, s in runs)[len(runs) // 2]
    tokens = sorted(t / s for _, t, s in runs)[len(runs) // 2]
    print(f"{'labelling, batched (shared prefix)':44} {rollouts:9,.1f} rollouts/s {tokens:9,.0f} tokens/s")
    prompts = [prefix_prompt(s.question, s.steps, i) for s in sols[:8] for i in range(1, len(s.steps))]
    tok.padding_side = "left"

    def per_prefix():
        total_tokens = 0
        for p in prompts:
            enc = tok(p, return_tensors="pt")
            out = model.generate(
                **enc, do_sample=True, num_return_sequences=k, max_new_tokens=128, pad_token_id=tok.pad_token_id
            )
            total_tokens += int((out[:, enc.input_ids.shape[1] :] != tok.pad_token_id).sum())
        return total_tokens

    with torch.inference_mode():
        base_tokens, base_s = timed(per_prefix)
    base_rollouts = len(prompts) * k
    print(
        f"{'labelling, one generate() per prefix':44} {base_rollouts / base_s:9,.1f} rollouts/s "
        f"{base_tokens / base_s:9,.0f} tokens/s  ({len(prompts)} prefixes)"
    )


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--solutions", type=int, default=256)
    args = p.parse_args()
    model, tok, label = load_policy(args.model)
    rm, rm_tok = reward_model(model, tok, args.model)
    print(f"policy: {label}")
    gold = problems(args.solutions)
    bench_scoring(rm, rm_tok, gold, args.repeat)
    bench_labelling(model, tok, gold[:128], args.repeat)


if __name__ == "__main__":
    main()
