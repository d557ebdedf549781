"""Tiny random causal LMs of the architectures users bring, each with a tokenizer in its family's style.

Built from a config with transformers, never downloaded: for tests of "any causal LM" and for the
GPU check. The tokenizers reproduce what matters about the real ones:

| family   | model class                  | tokenizer (transformers class) | BOS added | pad token       | padding |
|----------|------------------------------|--------------------------------|-----------|-----------------|---------|
| llama    | LlamaForCausalLM, untied     | Llama (Metaspace, byte fallback) | `<s>`   | none            | left    |
| mistral  | MistralForCausalLM, GQA      | Llama                          | `<s>`     | none            | left    |
| qwen2    | Qwen2ForCausalLM, tied, padded vocabulary | Qwen2 (byte-level, digits split) | none | `<\\|endoftext\\|>` = EOS | right |
| gpt_neox | GPTNeoXForCausalLM, untied, partial rotary | GPT-NeoX (byte-level) | none  | `<\\|padding\\|>` != EOS | right |
| gpt2     | GPT2LMHeadModel (`n_embd`, `n_positions`), tied | GPT-2 (byte-level) | none | none         | right |

The vocabulary is trained on the synthetic task's text (a few hundred tokens), so a few hundred
SFT steps teach these models the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ARCHITECTURES = ("llama", "mistral", "qwen2", "gpt_neox", "gpt2")


def architecture_tokenizer(family: str, texts: list[str], vocab_size: int = 400):
    """A tokenizer of the family's transformers class with a vocabulary trained on texts; no pad token
    is added here (GPT-2 and Llama have none), so the engine's handling of a missing one is exercised."""
    import transformers

    base: Any
    if family in ("llama", "mistral"):
        from tokenizers import pre_tokenizers

        base = transformers.LlamaTokenizer(add_bos_token=True)
        # SentencePiece as in Llama 2 / Mistral: pieces start at spaces ("▁"), a newline is a token of its own
        base.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split("\n", behavior="isolated"),
                pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
            ]
        )
    elif family == "qwen2":
        base = transformers.Qwen2Tokenizer()
    elif family == "gpt_neox":
        base = transformers.GPTNeoXTokenizer()
    elif family == "gpt2":
        base = transformers.GPT2Tokenizer()
    else:
        raise ValueError(f"unknown family {family!r} (known: {', '.join(ARCHITECTURES)})")
    return base.train_new_from_iterator(texts, vocab_size)


def architecture_config(
    family: str, tokenizer, hidden: int = 64, layers: int = 2, heads: int = 4, positions: int = 512
):
    """A small config of the family; ids of BOS/EOS/pad are the tokenizer's, as in the real checkpoints."""
    import transformers

    vocab = len(tokenizer)
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if family == "llama":
        return transformers.LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=hidden * 3,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=positions,
            tie_word_embeddings=False,
            **ids,
        )
    if family == "mistral":
        return transformers.MistralConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=hidden * 3,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),  # grouped-query attention, as Mistral 7B
            max_position_embeddings=positions,
            sliding_window=positions,
            tie_word_embeddings=False,
            **ids,
        )
    if family == "qwen2":
        return transformers.Qwen2Config(
            vocab_size=-(-vocab // 64) * 64,  # more output rows than tokens, as Qwen2.5's 151,936 vs 151,665
            hidden_size=hidden,
            intermediate_size=hidden * 3,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            max_position_embeddings=positions,
            tie_word_embeddings=True,  # Qwen2.5 0.5B-3B tie input and output embeddings
            **ids,
        )
    if family == "gpt_neox":
        return transformers.GPTNeoXConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=hidden * 4,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            max_position_embeddings=positions,  # rotary on a quarter of each head (the default), as Pythia
            use_parallel_residual=True,
            tie_word_embeddings=False,
            **ids,
        )
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=vocab,
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_positions=positions,
            tie_word_embeddings=True,
            **ids,
        )
    raise ValueError(f"unknown family {family!r} (known: {', '.join(ARCHITECTURES)})")


def make_architecture_model(family: str, folder: str | Path, texts: list[str], seed: int = 0, **sizes) -> Path:
    """Save a random model of the family and its tokenizer as a plain HF folder (no card), the way
    a user's downloaded checkpoint looks."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = architecture_tokenizer(family, texts)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(architecture_config(family, tokenizer, **sizes))
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
