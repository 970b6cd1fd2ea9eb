"""Tiny random-weight Wan components built in code: no hub, no files, fixed seeds.

The layouts are the real ones (Wan 2.2 TI2V-5B, Wan 2.1 T2V/I2V with CLIP, Wan 2.2 A14B with two
experts, Wan 2.1 VACE) at toy sizes, after diffusers' own fast tests, so the stock pipelines run
them unchanged. Their videos are noise, by design. Every builder takes `(seed, two_experts)`.
"""

from __future__ import annotations

from typing import Any

import torch

from model.backends.tiny import build_byte_tokenizer, build_wan22_vae

# Width of the tiny text encoder's output; must equal the transformers' `text_dim`.
TEXT_DIM = 32
# The Wan transformer blocks every tiny model shares (diffusers' own fast tests use these sizes).
TINY_WAN_BLOCKS: dict[str, Any] = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    text_dim=TEXT_DIM,
    freq_dim=256,
    ffn_dim=32,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)
# Wan 2.2 A14B switches from the high-noise to the low-noise expert at t = ratio * 1000; the real
# Wan2.2-T2V-A14B config says 0.875, Wan2.2-I2V-A14B 0.9.
T2V_BOUNDARY_RATIO = 0.875
I2V_BOUNDARY_RATIO = 0.9
# The tiny CLIP's hidden size: the transformer's `image_dim` (real Wan 2.1 I2V: ViT-H/14, 1280).
TINY_IMAGE_DIM = 4


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


def build_ti2v_components(seed: int = 0, two_experts: bool = False) -> dict[str, Any]:
    """Components for `WanPipeline` / `WanImageToVideoPipeline` in the Wan 2.2 TI2V-5B layout.

    48-channel VAE with 16x spatial compression and 2x2 patchified input (so sizes are multiples
    of 32), transformer in=out=48, no CLIP: the image is injected by overwriting the first latent
    frame (`expand_timesteps=True`). TI2V-5B is one transformer: `two_experts` is refused.
    """
    from diffusers import WanTransformer3DModel

    _single_expert("wan-ti2v", two_experts)
    components = _text_components(seed)
    components["vae"] = build_wan22_vae(seed, base_dim=3)
    torch.manual_seed(seed)
    components["transformer"] = WanTransformer3DModel(
        **TINY_WAN_BLOCKS, in_channels=48, out_channels=48, num_layers=2
    ).eval()
    components["scheduler"] = _flow_scheduler()
    components["transformer_2"] = None
    components["expand_timesteps"] = True
    return components


def build_t2v_components(seed: int = 0, two_experts: bool = False) -> dict[str, Any]:
    """Components for `WanPipeline` in the Wan 2.1 T2V layout (16-channel VAE, transformer
    in=out=16, one timestep per sample), or with `two_experts` the Wan 2.2 T2V-A14B layout
    (high-noise `transformer`, low-noise `transformer_2`, `boundary_ratio`)."""
    components = _text_components(seed)
    components["vae"] = _wan21_vae(seed)
    components.update(_experts(seed, 16, None, two_experts))
    components["scheduler"] = _flow_scheduler()
    components["boundary_ratio"] = T2V_BOUNDARY_RATIO if two_experts else None
    components["expand_timesteps"] = False
    return components


def build_i2v_components(seed: int = 0, two_experts: bool = False) -> dict[str, Any]:
    """Components for `WanImageToVideoPipeline`.

    Default: the Wan 2.1 I2V-14B layout: transformer in_channels=36 (16 noisy + 4 mask + 16
    first-frame condition channels) with the CLIP image branch (`image_dim`). `two_experts`: the
    Wan 2.2 I2V-A14B layout: same 36 channels, no image encoder (`image_dim=None`), two experts.
    """
    components = _text_components(seed)
    components["vae"] = _wan21_vae(seed)
    image_dim = None if two_experts else TINY_IMAGE_DIM
    components.update(_experts(seed, 36, image_dim, two_experts))
    if two_experts:
        components.update(image_encoder=None, image_processor=None)
    else:
        components.update(_tiny_clip(seed))
    components["scheduler"] = _flow_scheduler()
    components["boundary_ratio"] = I2V_BOUNDARY_RATIO if two_experts else None
    components["expand_timesteps"] = False
    return components


def build_vace_components(seed: int = 0, two_experts: bool = False) -> dict[str, Any]:
    """Components for `WanVACEPipeline` in the Wan 2.1 VACE layout (one transformer: `two_experts`
    is refused).

    16-channel VAE with 8x spatial compression (sizes are multiples of 16); the VACE control
    stream takes 96 channels: 16 inactive + 16 reactive video latents + 64 (8x8) mask channels.
    """
    from diffusers import WanVACETransformer3DModel

    _single_expert("wan-vace", two_experts)
    components = _text_components(seed)
    components["vae"] = _wan21_vae(seed)
    torch.manual_seed(seed)
    components["transformer"] = WanVACETransformer3DModel(
        **TINY_WAN_BLOCKS,
        in_channels=16,
        out_channels=16,
        num_layers=3,
        vace_layers=[0, 2],
        vace_in_channels=96,
    ).eval()
    components["scheduler"] = _flow_scheduler()
    components["transformer_2"] = None
    return components


def _single_expert(backend: str, two_experts: bool) -> None:
    if two_experts:
        raise ValueError(f"{backend} has no two-expert layout (option two_experts)")


def _text_components(seed: int) -> dict[str, Any]:
    tokenizer = build_byte_tokenizer()
    return {"tokenizer": tokenizer, "text_encoder": build_text_encoder(max(len(tokenizer), 300), seed)}


def _flow_scheduler() -> Any:
    """UniPC in flow-matching mode, the scheduler the real Wan checkpoints ship with."""
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)


def _wan21_vae(seed: int) -> Any:
    """The Wan 2.1 VAE layout (z=16, 8x spatial, 4x temporal) at toy width."""
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ).eval()


def _wan_transformer(seed: int, in_channels: int, image_dim: int | None) -> Any:
    """A two-layer `WanTransformer3DModel` (16 output channels); `image_dim` enables the Wan 2.1
    I2V image cross-attention branch."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        **TINY_WAN_BLOCKS, in_channels=in_channels, out_channels=16, num_layers=2, image_dim=image_dim
    ).eval()


def _experts(seed: int, in_channels: int, image_dim: int | None, two_experts: bool) -> dict[str, Any]:
    """`transformer` and, for the A14B layout, a `transformer_2` with other random weights."""
    return {
        "transformer": _wan_transformer(seed, in_channels, image_dim),
        "transformer_2": _wan_transformer(seed + 1, in_channels, image_dim) if two_experts else None,
    }


def _tiny_clip(seed: int) -> dict[str, Any]:
    """A two-layer `CLIPVisionModel` (32 px, patch 1) and its image processor."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=TINY_IMAGE_DIM,
            projection_dim=TINY_IMAGE_DIM,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    ).eval()
    return {"image_encoder": encoder, "image_processor": CLIPImageProcessor(crop_size=32, size=32)}
