"""Tiny random-weight Wan components built in code: no hub, no files, fixed seeds.

The layouts are the real ones (Wan 2.2 TI2V-5B, Wan 2.1 VACE) at toy sizes, after diffusers' own
fast tests, so the stock pipelines run them unchanged. Their videos are noise, by design.
"""

from __future__ import annotations

from typing import Any

import torch

# Width of the tiny text encoder's output; must equal the transformers' `text_dim`.
TEXT_DIM = 32
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


def build_text_encoder(vocab_size: int, seed: int) -> Any:
    """A two-layer UMT5 encoder (real Wan uses umt5-xxl) with `d_model == TEXT_DIM`."""
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
    )
    return UMT5EncoderModel(config).eval()


def _text_components(seed: int) -> dict[str, Any]:
    tokenizer = build_byte_tokenizer()
    return {"tokenizer": tokenizer, "text_encoder": build_text_encoder(max(len(tokenizer), 300), seed)}


def _flow_scheduler() -> Any:
    """UniPC in flow-matching mode, the scheduler the real Wan checkpoints ship with."""
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)


def build_ti2v_components(seed: int = 0) -> dict[str, Any]:
    """Components for `WanPipeline` / `WanImageToVideoPipeline` in the Wan 2.2 TI2V-5B layout.

    48-channel VAE with 16x spatial compression and 2x2 patchified input (so sizes are multiples
    of 32), transformer in=out=48, no CLIP: the image is injected by overwriting the first latent
    frame (`expand_timesteps=True`).
    """
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    components = _text_components(seed)
    torch.manual_seed(seed)
    components["vae"] = AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    ).eval()
    torch.manual_seed(seed)
    components["transformer"] = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=48,
        out_channels=48,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    ).eval()
    components["scheduler"] = _flow_scheduler()
    components["transformer_2"] = None
    components["expand_timesteps"] = True
    return components


def build_vace_components(seed: int = 0) -> dict[str, Any]:
    """Components for `WanVACEPipeline` in the Wan 2.1 VACE layout.

    16-channel VAE with 8x spatial compression (sizes are multiples of 16); the VACE control
    stream takes 96 channels: 16 inactive + 16 reactive video latents + 64 (8x8) mask channels.
    """
    from diffusers import AutoencoderKLWan, WanVACETransformer3DModel

    components = _text_components(seed)
    torch.manual_seed(seed)
    components["vae"] = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ).eval()
    torch.manual_seed(seed)
    components["transformer"] = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=3,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        vace_layers=[0, 2],
        vace_in_channels=96,
    ).eval()
    components["scheduler"] = _flow_scheduler()
    components["transformer_2"] = None
    return components
