"""The tokenizer every tiny random-weight model shares: byte-level, built in code, no files.

Each family's tiny components live with the family (`model.backends.wan.tiny`,
`model.backends.ltx2.tiny`); the layouts are the real ones at toy sizes, so their videos are noise.
"""

from __future__ import annotations

from typing import Any

# Text tokens per prompt for the tiny models (real Wan: 512); the tokenizer carries it, so a
# saved tiny model keeps it when loaded back.
TINY_MAX_SEQUENCE_LENGTH = 64


def build_byte_tokenizer(model_max_length: int = TINY_MAX_SEQUENCE_LENGTH) -> Any:
    """A deterministic byte-level tokenizer with T5's special ids (<pad>=0, </s>=1, <unk>=2).

    Needs no training and no files; `save_pretrained` writes a `tokenizer.json` that
    `AutoTokenizer.from_pretrained` loads back, so the real loading path works on it.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
        padding_side="right",
    )
