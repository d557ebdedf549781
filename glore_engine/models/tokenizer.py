"""A byte-level BPE tokenizer trained on the task's own text, digits split one per token.

Splitting digits makes every number a sequence of single-digit tokens, which a small model learns
arithmetic on far better than on BPE-merged numbers (DEMO-NOTES: saturates near 710 tokens).
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
    """Make any HF tokenizer usable here: a pad token, left padding for generation."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def fingerprint(tokenizer) -> str:
    """A short hash of the vocabulary: models that must share token ids must share this."""
    import hashlib
    import json

    vocab = tokenizer.get_vocab()
    blob = json.dumps(sorted(vocab.items()), ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
