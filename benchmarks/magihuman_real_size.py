"""Real-size daVinci-MagiHuman (15B) in bf16 with random weights: seconds per step and MFU (CUDA only).

`paddock bench engine --backend magihuman --real-size 256p|1080p` times the released transformer
architecture on one 5 s clip, as the released pipeline runs it:

- 256p: the distilled DiT at the base size (448x256: 32 latent frames x 16 x 28, 126 audio
  tokens, 640 text tokens, ~4.3k rows), one sample a step (no CFG), 8 steps a clip;
- 1080p: the 1080p SR DiT (frame-local attention on 32 of its 40 layers, coordinates v1) at
  1920x1088 (~66k rows), one sample a step, 5 steps a clip.

MFU = FLOPs of one forward / (seconds x 989e12, an H100's or H200's dense bf16 peak), the
FLOPs counted from the config and the packed rows (`forward_flops`): every projection once per
row (each row uses its own modality's copy), attention 4 x head_dim x heads per (query, key)
pair it computes. The clip's transformer time is printed beside the published one on an H100
(256p: 2.0 s in all, 1.6 s of it the base stage; 1080p: 38.4 s, 31.0 s of it the SR stage).

At 256p one clip's ~4.3k rows leave a large GPU partly idle, so the run then packs four clips
into every forward, as the engine batches jobs, and prints the throughput against one at a time.
(At 1080p one clip's ~66k rows already fill it.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

PEAK_BF16_FLOPS = 989e12
TEXT_TOKENS = 640  # the released text length (T5-Gemma, padded or trimmed to 640)
AUDIO_TOKENS = 5 * 25 + 1  # 5 s at 25 audio latents a second


@dataclass(frozen=True)
class RealSize:
    """One timed stage: the DiT variant, its latent grid and coordinate style, steps per clip."""

    variant: str
    latent_grid: tuple[int, int, int]  # (frames, height, width) in latent cells
    coords_style: str
    steps_per_clip: int
    published_s: float  # the stage's published seconds per 5 s clip on one H100
    published: str
    packed: int = 1  # clips sharing each forward in the packed run (1: no packed run)


SIZES = {
    "256p": RealSize("distill", (32, 16, 28), "v2", 8, 1.6, "1.6 s base stage of 2.0 s in all", packed=4),
    "1080p": RealSize("sr_1080p", (32, 68, 120), "v1", 5, 31.0, "31.0 s SR stage of 38.4 s in all"),
}


def forward_flops(config: Any, batch: Any) -> float:
    """FLOPs (2 per multiply-add) of one forward of `config` over the packed `batch`."""
    return projection_flops(config, batch) + attention_flops(config, batch)


def projection_flops(config: Any, batch: Any) -> float:
    """The matmuls of the embedders, every layer's projections and MLP, and the output heads."""
    rows = batch.num_tokens
    video, audio = batch.video_tokens.shape[0], batch.audio_tokens.shape[0]
    hidden, head_dim, heads = config.hidden_size, config.head_dim, config.num_heads
    qkv = heads * head_dim + 2 * config.num_kv_heads * head_dim + (heads if config.enable_attn_gating else 0)
    # embedders of every row, output heads of the video and audio rows
    embedded = video * config.video_in_channels + audio * config.audio_in_channels
    embedded += (rows - video - audio) * config.text_in_channels
    flops = 2.0 * hidden * (embedded + video * config.video_in_channels + audio * config.audio_in_channels)
    for layer in range(config.num_layers):
        width = config.mlp_width(layer)
        up = width * (2 if config.mlp_gated(layer) else 1)
        flops += 2.0 * rows * hidden * (qkv + heads * head_dim + up) + 2.0 * rows * width * hidden
    return float(flops)


def attention_flops(config: Any, batch: Any) -> float:
    """Scores and weighted values, 4 x head_dim per (query head, key) pair computed: every pair
    of a sample in full layers, the frame windows plus audio and text in frame-local ones."""
    from model.backends.magihuman.attention import frame_windows

    pairs = 0
    for layer in range(config.num_layers):
        for span in batch.spans:
            if layer not in config.local_attn_layers:
                pairs += span.length**2
                continue
            tail = span.length - span.video_tokens
            pairs += tail * span.length  # audio and text queries see their whole sample
            per_frame = span.tokens_per_frame
            for first, last, low, high in frame_windows(span.frames, batch.frame_receptive_field):
                pairs += (last - first) * per_frame * ((high - low) * per_frame + tail)
    return float(4.0 * config.head_dim * config.num_heads * pairs)


def build_batch(size: RealSize, text_width: int, device: Any, clips: int = 1) -> Any:
    """`clips` clips' packed input at `size`, random, on `device`."""
    import torch

    from model.backends.magihuman.config import AUDIO_LATENT_CHANNELS, LATENT_CHANNELS
    from model.backends.magihuman.packing import PackingConfig, SampleInput, pack

    generator = torch.Generator().manual_seed(0)
    samples = [
        SampleInput(
            video=torch.randn(LATENT_CHANNELS, *size.latent_grid, generator=generator).to(device),
            audio=torch.randn(AUDIO_TOKENS, AUDIO_LATENT_CHANNELS, generator=generator).to(device),
            text=torch.randn(TEXT_TOKENS, text_width, generator=generator).to(device),
        )
        for _ in range(clips)
    ]
    return pack(samples, PackingConfig(coords_style="v1" if size.coords_style == "v1" else "v2"))


def random_transformer(config: Any, device: Any, dtype: Any) -> Any:
    """The transformer of `config` on `device` with random weights, allocated there directly."""
    import torch

    from model.backends.magihuman.transformer import MagiHumanTransformer

    with torch.device("meta"):
        model = MagiHumanTransformer(config, dtype)
    model = model.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.zero_()  # (1 + w) scales of 1, as the released init
            else:
                param.normal_(0.0, 0.02, generator=generator)
    return model.eval()


def time_steps(model: Any, batch: Any, steps: int, synchronize: Any) -> float:
    """Seconds per forward over `steps` forwards, after one warm-up forward."""
    import torch

    with torch.inference_mode():
        model(batch)
        synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            model(batch)
        synchronize()
    return (time.perf_counter() - started) / steps


def magihuman_real_size(resolution: str, steps: int = 3) -> int:
    """Print seconds per step and MFU for the released MagiHuman DiT at `resolution`."""
    import torch

    from model.backends.magihuman.config import released_config

    if not torch.cuda.is_available():
        print("real-size benchmark: needs a CUDA GPU (none here)")
        return 2
    size = SIZES[resolution]
    config = released_config(size.variant)
    model = random_transformer(config, torch.device("cuda"), torch.bfloat16)
    batch = build_batch(size, config.text_in_channels, torch.device("cuda"))
    per_step = time_steps(model, batch, steps, torch.cuda.synchronize)
    flops = forward_flops(config, batch)
    frames = size.latent_grid[0]
    print(
        f"real-size MagiHuman 15B bf16 ({size.variant}), {resolution} x {4 * (frames - 1) + 1} frames "
        f"({batch.num_tokens} tokens), one sample a step"
    )
    peak_gib = torch.cuda.max_memory_allocated() / 2**30
    print(f"gpu: {torch.cuda.get_device_name()}  peak memory: {peak_gib:.1f} GiB")
    print(f"seconds per step: {per_step:.3f}")
    print(f"MFU: {flops / (per_step * PEAK_BF16_FLOPS):.1%}")
    clip = per_step * size.steps_per_clip
    print(
        f"transformer seconds per 5 s clip ({size.steps_per_clip} steps): {clip:.2f} "
        f"(published on one H100: {size.published}; ratio {clip / size.published_s:.2f})"
    )
    if size.packed > 1:
        batch = build_batch(size, config.text_in_channels, torch.device("cuda"), clips=size.packed)
        packed_s = time_steps(model, batch, steps, torch.cuda.synchronize)
        print(
            f"{size.packed} clips packed in each forward: seconds per step {packed_s:.3f}, "
            f"MFU {forward_flops(config, batch) / (packed_s * PEAK_BF16_FLOPS):.1%}; "
            f"throughput ratio (packed/one at a time): {size.packed * per_step / packed_s:.2f}"
        )
    return 0
