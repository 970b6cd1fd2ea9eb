"""What the tiny random-weight models of several families share: a byte-level tokenizer built in
code (no files), and the Wan 2.2 VAE layout (Wan TI2V and MagiHuman both decode with it).

Each family's other tiny components live with the family (`model.backends.wan.tiny`,
`model.backends.ltx2.tiny`, `model.backends.magihuman.components`); the layouts are the real ones
at toy sizes, so their videos are noise.
"""

from __future__ import annotations

from typing import Any

import torch

# Text tokens per prompt for the tiny models (real Wan: 512); the tokenizer carries it, so a
# saved tiny model keeps it when loaded back.
TINY_MAX_SEQUENCE_LENGTH = 64
WAN22_LATENT_CHANNELS = 48


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


def build_wan22_vae(
    seed: int,
    *,
    base_dim: int,
    latents_mean: list[float] | None = None,
    latents_std: list[float] | None = None,
) -> Any:
    """A Wan 2.2 TI2V-5B-layout `AutoencoderKLWan` at toy width `base_dim`: 48 latent channels,
    2x2 patchified input, 4x16x16 compression. Per-channel latent stats default to 0 and 1."""
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(
        base_dim=base_dim,
        z_dim=WAN22_LATENT_CHANNELS,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=latents_mean or [0.0] * WAN22_LATENT_CHANNELS,
        latents_std=latents_std or [1.0] * WAN22_LATENT_CHANNELS,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    ).eval()
