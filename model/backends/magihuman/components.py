"""The components around the transformer, from the libraries that have them, and tiny builders.

- text: `transformers` `T5GemmaEncoderModel` (released: t5gemma-9b-9b-ul2), last hidden state;
- video VAE: diffusers `AutoencoderKLWan` with the Wan 2.2 TI2V-5B settings (48 channels,
  4x16x16 compression, per-channel mean/std normalisation);
- audio VAE: diffusers `AutoencoderOobleck` (stable-audio-open-1.0's VAE; non-commercial licence).

A diffusers-style folder holds them as `transformer/`, optional `sr/`, `vae/`, `audio_vae/`,
`text_encoder/` and `tokenizer/` (the tokenizer may also sit in `text_encoder/`). The tiny
builders make random-weight components of the same classes, in code, offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.backends.magihuman.checkpoint import load_transformer, save_transformer
from model.backends.magihuman.config import (
    AUDIO_LATENT_CHANNELS,
    LATENT_CHANNELS,
    TEXT_MAX_TOKENS,
    tiny_config,
)
from model.backends.magihuman.transformer import MagiHumanTransformer
from model.backends.tiny import build_byte_tokenizer, build_wan22_vae

TINY_TEXT_WIDTH = 32
TINY_TEXT_TOKENS = 64
# Scales the tiny audio decoder's output to about 0.1 RMS from unit-variance latents.
TINY_AUDIO_GAIN = 16.0
# The released pipeline's fixed negative prompt: the unguided half of the base DiT's CFG is
# conditioned on it (picture, sound and speech faults).
NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, "
    "static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, "
    "extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, "
    "fused fingers, still picture, messy background, three legs, many people in the background, "
    "walking backwards, low quality, worst quality, poor quality, noise, background noise, hiss, hum, "
    "buzz, crackle, static, compression artifacts, MP3 artifacts, digital clipping, distortion, "
    "muffled, muddy, unclear, echo, reverb, room echo, over-reverberated, hollow sound, distant, "
    "washed out, harsh, shrill, piercing, grating, tinny, thin sound, boomy, bass-heavy, flat EQ, "
    "over-compressed, abrupt cut, jarring transition, sudden silence, looping artifact, music, "
    "instrumental, sirens, alarms, crowd noise, unrelated sound effects, chaotic, disorganized, "
    "messy, cheap sound, emotionless, flat delivery, deadpan, lifeless, apathetic, robotic, "
    "mechanical, monotone, flat intonation, undynamic, boring, reading from a script, AI voice, "
    "synthetic, text-to-speech, TTS, insincere, fake emotion, exaggerated, overly dramatic, "
    "melodramatic, cheesy, cringey, hesitant, unconfident, tired, weak voice, stuttering, stammering, "
    "mumbling, slurred speech, mispronounced, bad articulation, lisp, vocal fry, creaky voice, mouth "
    "clicks, lip smacks, wet mouth sounds, heavy breathing, audible inhales, plosives, p-pops, "
    "coughing, clearing throat, sneezing, speaking too fast, rushed, speaking too slow, dragged out, "
    "unnatural pauses, awkward silence, choppy, disjointed, multiple speakers, two voices, background "
    "talking, out of tune, off-key, autotune artifacts"
)


@dataclass
class MagiHumanComponents:
    """Everything a MagiHuman model needs to turn a prompt (and image) into video and sound."""

    transformer: MagiHumanTransformer
    text_encoder: Any  # T5GemmaEncoderModel
    tokenizer: Any
    vae: Any  # AutoencoderKLWan, Wan 2.2 layout
    audio_vae: Any  # AutoencoderOobleck
    sr_transformer: MagiHumanTransformer | None = None
    text_max_tokens: int = TEXT_MAX_TOKENS


def encode_prompt(components: MagiHumanComponents, prompt: str) -> torch.Tensor:
    """The prompt's text features [tokens, width], fp32, real tokens only, at most
    `text_max_tokens` of them. The original rounds the encoder output through fp16; so does this."""
    encoder = components.text_encoder
    inputs = components.tokenizer([prompt], return_tensors="pt").to(encoder.device)
    with torch.inference_mode():
        hidden = encoder(**inputs).last_hidden_state[0]
    return hidden[: components.text_max_tokens].to(torch.float16).to(torch.float32)


def _latent_stats(vae: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (-1, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean, device=like.device, dtype=like.dtype).view(shape)
    std = torch.tensor(vae.config.latents_std, device=like.device, dtype=like.dtype).view(shape)
    return mean, std


def encode_image(vae: Any, image: torch.Tensor) -> torch.Tensor:
    """An image [3, H, W] in [-1, 1] -> its normalised latent [48, 1, H/16, W/16] (the
    distribution's mode), the i2v first frame."""
    dtype = next(vae.parameters()).dtype
    with torch.inference_mode():
        latent = (
            vae.encode(image[None, :, None].to(vae.device, dtype)).latent_dist.mode()[0].to(torch.float32)
        )
    mean, std = _latent_stats(vae, latent)
    return (latent - mean) / std


def decode_video(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents [batch, 48, T, h, w] -> frames [batch, 4(T-1)+1, 16h, 16w, 3] in [0, 1]."""
    mean, std = _latent_stats(vae, latents[0])
    dtype = next(vae.parameters()).dtype
    with torch.inference_mode():
        video = vae.decode((latents * std + mean).to(vae.device, dtype)).sample.to(torch.float32)
    return (video * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1)


def build_tiny_text_encoder(vocab_size: int, seed: int) -> Any:
    """A two-layer T5-Gemma encoder, `TINY_TEXT_WIDTH` wide (released: 3584)."""
    from transformers import T5GemmaConfig, T5GemmaEncoderModel

    module = dict(
        vocab_size=vocab_size,
        hidden_size=TINY_TEXT_WIDTH,
        intermediate_size=2 * TINY_TEXT_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=TINY_TEXT_TOKENS,
        max_position_embeddings=4 * TINY_TEXT_TOKENS,
    )
    torch.manual_seed(seed)
    config = T5GemmaConfig(is_encoder_decoder=False, vocab_size=vocab_size, encoder=module)
    return T5GemmaEncoderModel(config).eval()


def build_tiny_vae(seed: int) -> Any:
    """The Wan 2.2 VAE layout at toy width, with a fixed non-trivial per-channel mean and std like
    the released one's."""
    stats = torch.Generator().manual_seed(seed)
    mean = (torch.randn(LATENT_CHANNELS, generator=stats) * 0.5).tolist()
    std = (torch.rand(LATENT_CHANNELS, generator=stats) + 0.5).tolist()
    return build_wan22_vae(seed, base_dim=4, latents_mean=mean, latents_std=std)


def build_tiny_audio_vae(seed: int) -> Any:
    """An Oobleck VAE with the released strides (2048 samples per latent, 64 channels, stereo)
    at toy width.

    Its decoder has no biases and a louder last layer: random biases alone would make a loud
    constant hum that hardly depends on the latents, so the sound would not be the model's."""
    from diffusers import AutoencoderOobleck

    torch.manual_seed(seed)
    vae = AutoencoderOobleck(
        encoder_hidden_size=4,
        downsampling_ratios=[2, 4, 4, 8, 8],
        channel_multiples=[1, 2, 4, 8, 16],
        decoder_channels=4,
        decoder_input_channels=AUDIO_LATENT_CHANNELS,
        audio_channels=2,
        sampling_rate=51200,
    ).eval()
    with torch.no_grad():
        for name, param in vae.decoder.named_parameters():
            if name.endswith("bias"):
                param.zero_()
        vae.decoder.conv2.weight_g.mul_(TINY_AUDIO_GAIN)
    return vae


def build_tiny_transformer(seed: int, *, local_attention: bool = False) -> MagiHumanTransformer:
    """A four-layer transformer of the released layout with random weights, norms included
    (so that each modality's norm copy matters)."""
    torch.manual_seed(seed)
    model = MagiHumanTransformer(
        tiny_config(text_in_channels=TINY_TEXT_WIDTH, local_attention=local_attention)
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.normal_(0.0, 0.1)
    return model.eval()


def build_tiny_components(
    seed: int = 0, *, with_sr: bool = False, sr_local_attention: bool = True
) -> MagiHumanComponents:
    """All components at toy sizes, offline; `with_sr` adds an SR transformer, frame-local
    (as the 1080p one) unless `sr_local_attention` is False (as the 540p one)."""
    tokenizer = build_byte_tokenizer(TINY_TEXT_TOKENS)
    return MagiHumanComponents(
        transformer=build_tiny_transformer(seed),
        text_encoder=build_tiny_text_encoder(max(len(tokenizer), 300), seed),
        tokenizer=tokenizer,
        vae=build_tiny_vae(seed),
        audio_vae=build_tiny_audio_vae(seed),
        sr_transformer=(
            build_tiny_transformer(seed + 1, local_attention=sr_local_attention) if with_sr else None
        ),
        text_max_tokens=TINY_TEXT_TOKENS,
    )


def save_components(components: MagiHumanComponents, root: str | Path) -> None:
    """Write the diffusers-style folder (transformer weights under the original key names)."""
    root = Path(root)
    save_transformer(components.transformer, root / "transformer")
    if components.sr_transformer is not None:
        save_transformer(components.sr_transformer, root / "sr")
    components.vae.save_pretrained(root / "vae")
    components.audio_vae.save_pretrained(root / "audio_vae")
    components.text_encoder.save_pretrained(root / "text_encoder")
    components.tokenizer.save_pretrained(root / "tokenizer")


@dataclass(frozen=True)
class ComponentPaths:
    """Where each component of a model is on disk."""

    transformer: Path  # a released-layout folder or a diffusers-style transformer/
    text_encoder: Path
    tokenizer: Path
    vae: Path
    audio_vae: Path
    sr: Path | None = None

    @classmethod
    def folder(cls, root: str | Path) -> ComponentPaths:
        """The components of a diffusers-style folder (`transformer/`, optional `sr/`, `vae/`,
        `audio_vae/`, `text_encoder/`, and `tokenizer/` or the tokenizer in `text_encoder/`)."""
        root = Path(root)
        tokenizer = root / "tokenizer" if (root / "tokenizer").is_dir() else root / "text_encoder"
        sr = root / "sr" if (root / "sr").is_dir() else None
        return cls(
            root / "transformer", root / "text_encoder", tokenizer, root / "vae", root / "audio_vae", sr
        )


def load_components(
    where: str | Path | ComponentPaths,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    sr_local_attn_layers: tuple[int, ...] | None = None,
) -> MagiHumanComponents:
    """Load a diffusers-style folder, or the components at `ComponentPaths`. `dtype` is the
    transformers' matmul dtype and the text encoder's and video VAE's weight dtype, as the
    original runs them (bf16 for the released weights); the audio VAE stays fp32.
    `sr_local_attn_layers` sets the SR DiT's frame-local layers."""
    from diffusers import AutoencoderKLWan, AutoencoderOobleck
    from transformers import AutoTokenizer, T5GemmaEncoderModel

    paths = where if isinstance(where, ComponentPaths) else ComponentPaths.folder(where)
    tokenizer = AutoTokenizer.from_pretrained(paths.tokenizer)
    sr = None
    if paths.sr is not None:
        sr = load_transformer(paths.sr, dtype=dtype, device=device, local_attn_layers=sr_local_attn_layers)
    return MagiHumanComponents(
        transformer=load_transformer(paths.transformer, dtype=dtype, device=device),
        # The released text encoder is the whole encoder-decoder checkpoint; only its encoder loads.
        text_encoder=T5GemmaEncoderModel.from_pretrained(
            paths.text_encoder, is_encoder_decoder=False, dtype=dtype
        )
        .to(device)
        .eval(),
        tokenizer=tokenizer,
        vae=AutoencoderKLWan.from_pretrained(paths.vae, torch_dtype=dtype).to(device).eval(),
        audio_vae=AutoencoderOobleck.from_pretrained(paths.audio_vae, torch_dtype=torch.float32)
        .to(device)
        .eval(),
        sr_transformer=sr,
        text_max_tokens=min(TEXT_MAX_TOKENS, tokenizer.model_max_length),
    )
