"""Tiny random-weight Wan components built in code: no hub, no files, fixed seeds.

The layouts are the real ones (Wan 2.2 TI2V-5B, Wan 2.1 VACE, Wan 2.1 T2V/I2V with CLIP, Wan 2.2
A14B with two experts) at toy sizes, after diffusers' own fast tests, so the stock pipelines run
them unchanged. Their videos are noise, by design.
"""

from __future__ import annotations

from typing import Any

import torch

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
        **TINY_WAN_BLOCKS, in_channels=48, out_channels=48, num_layers=2
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


def build_ltx2_components(seed: int = 0) -> dict[str, Any]:
    """Components for `LTX2Pipeline` / `LTX2ImageToVideoPipeline` (joint video + audio) at toy sizes.

    After diffusers' `tests/pipelines/ltx2/test_ltx2.py`, except that the Gemma 3 text encoder is
    built from a config (the tests download one) and the tokenizer is the byte-level one. The
    vocoder upsamples 10x16 = the mel hop of 160, so one second of video gets one second of sound.
    The video VAE compresses 2x in time and space here (real LTX-2: 8x in time, 32x in space).
    """
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    tokenizer = build_byte_tokenizer()
    torch.manual_seed(seed)
    text_config = {
        "vocab_size": max(len(tokenizer), 300),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "max_position_embeddings": 256,
        "sliding_window": 64,
    }
    vision_config = {
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 28,
        "patch_size": 14,
    }
    config = Gemma3Config(text_config=text_config, vision_config=vision_config, mm_tokens_per_image=4)
    text_encoder = Gemma3ForConditionalGeneration(config).eval()
    hidden, layers = text_config["hidden_size"], text_config["num_hidden_layers"]
    torch.manual_seed(seed)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=hidden,
        rope_double_precision=False,
        rope_type="split",
    ).eval()
    torch.manual_seed(seed)
    connectors = LTX2TextConnectors(
        caption_channels=hidden,
        text_proj_in_factor=layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    ).eval()
    torch.manual_seed(seed)
    vae = AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8,),
        decoder_block_out_channels=(8,),
        layers_per_block=(1,),
        decoder_layers_per_block=(1, 1),
        spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,),
        decoder_inject_noise=(False, False),
        downsample_type=("spatial",),
        upsample_residual=(False,),
        upsample_factor=(1,),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    ).eval()
    torch.manual_seed(seed)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    ).eval()
    torch.manual_seed(seed)
    vocoder = LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[20, 32],
        upsample_factors=[10, 16],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=16000,
    ).eval()
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": vae,
        "audio_vae": audio_vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "connectors": connectors,
        "transformer": transformer,
        "vocoder": vocoder,
        "processor": None,
        "prompt_enhancer": None,
        "duration_head": None,
    }


# -- Wan 2.1 T2V/I2V and Wan 2.2 A14B (two experts) --------------------------------------------

# Wan 2.2 A14B switches from the high-noise to the low-noise expert at t = ratio * 1000; the real
# Wan2.2-T2V-A14B config says 0.875, Wan2.2-I2V-A14B 0.9.
T2V_BOUNDARY_RATIO = 0.875
I2V_BOUNDARY_RATIO = 0.9
# The tiny CLIP's hidden size: the transformer's `image_dim` (real Wan 2.1 I2V: ViT-H/14, 1280).
TINY_IMAGE_DIM = 4


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
