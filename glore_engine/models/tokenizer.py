"""A byte-level BPE tokenizer trained on the task's own text, digits split one per token.

Splitting digits makes every number a sequence of single-digit tokens, which a small model learns
arithmetic on far better than on BPE-merged numbers (docs/demo-task.md: saturates near 710 tokens).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..formats import BAD_MARK

EOS = "<|endoftext|>"
SPECIAL_TOKENS = [EOS, BAD_MARK]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """Train the tokenizer on texts; returns a transformers fast tokenizer (eos = pad = bos)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=EOS,
        unk_token=None,
        additional_special_tokens=[BAD_MARK],
        clean_up_tokenization_spaces=False,
    )


def prepare_tokenizer(tokenizer):
    """Make any HF tokenizer usable here: a pad token (GPT-2 and Llama have none: EOS serves, padding
    is masked), left padding for generation (many default to right), and no EOS appended to every
    text (some Llama tokenizers do: it would end every prompt). A BOS the tokenizer adds is kept:
    prompts, training texts and scored texts all start with it, as in pre-training."""
    from ..errors import CheckpointError

    if tokenizer.eos_token is None:
        raise CheckpointError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no EOS token: a solution could never end"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "add_eos_token", False):
        tokenizer.add_eos_token = False
    tokenizer.padding_side = "left"
    return tokenizer


def fingerprint(tokenizer) -> str:
    """A short hash of the vocabulary: models that must share token ids must share this."""
    import hashlib
    import json

    vocab = tokenizer.get_vocab()
    blob = json.dumps(sorted(vocab.items()), ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
