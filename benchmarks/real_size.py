"""Real-size Wan 14B transformer in bf16 with random weights: seconds per step and MFU (CUDA only).

A step is what the engine runs per denoising step for one guided job: one transformer forward
over [cond, uncond] (batch 2). MFU = steps x 2 x FLOPs per forward / (seconds x GPUs x 989e12),
with FLOPs per forward from notes/peers.md §2 (6.54e15 at 720p x 81 frames, 1.69e15 at 480p).
It then times one VAE decode of the same clip (the Wan 2.1 VAE, 16 latent channels, in fp32 as
the pipelines run it): `paddock plan calibrate --from-bench` reads both lines.
"""

from __future__ import annotations

import time

PEAK_BF16_FLOPS = 989e12
FLOPS_PER_FORWARD = {"480p": 1.69e15, "720p": 6.54e15}
# Latent grid of 81 frames: (latent frames, latent height, latent width) after the 4x8x8 VAE.
LATENTS = {"480p": (21, 60, 104), "720p": (21, 90, 160)}
WAN_14B = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=40,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=13824,
    num_layers=40,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)


def real_size_benchmark(resolution: str, steps: int = 3) -> int:
    """Print seconds per guided step and MFU for the 14B transformer at `resolution`."""
    import torch
    from diffusers import WanTransformer3DModel

    if not torch.cuda.is_available():
        print("real-size benchmark: needs a CUDA GPU (none here)")
        return 2
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = WanTransformer3DModel(**WAN_14B).eval()
    torch.set_default_dtype(torch.float32)
    frames, height, width = LATENTS[resolution]
    hidden = torch.randn(2, 16, frames, height, width, device="cuda", dtype=torch.bfloat16)
    context = torch.randn(2, 512, 4096, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        for step in range(steps + 1):  # the first forward is a warm-up
            if step == 1:
                torch.cuda.synchronize()
                started = time.perf_counter()
            timestep = torch.full((2,), 999.0 - step * 10, device="cuda")
            model(hidden_states=hidden, timestep=timestep, encoder_hidden_states=context, return_dict=False)
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    per_step = seconds / steps
    mfu = steps * 2 * FLOPS_PER_FORWARD[resolution] / (seconds * 1 * PEAK_BF16_FLOPS)
    tokens = frames * (height // 2) * (width // 2)
    print(f"real-size Wan 14B bf16, {resolution} x 81 frames ({tokens} tokens), CFG batched (B=2)")
    peak_gib = torch.cuda.max_memory_allocated() / 2**30
    print(f"gpu: {torch.cuda.get_device_name()}  peak memory: {peak_gib:.1f} GiB")
    print(f"seconds per step: {per_step:.3f}")
    print(f"MFU: {mfu:.1%}", flush=True)
    del model, hidden, context
    torch.cuda.empty_cache()
    print(f"seconds per VAE decode: {vae_decode_seconds(LATENTS[resolution]):.3f}")
    return 0


def vae_decode_seconds(latent_grid: tuple[int, int, int]) -> float:
    """Seconds for one decode of a `latent_grid` latent by the Wan 2.1 VAE (random weights, fp32),
    after a warm-up decode of two latent frames."""
    import torch
    from diffusers import AutoencoderKLWan

    with torch.device("cuda"):
        vae = AutoencoderKLWan().eval()
    frames, height, width = latent_grid
    latent = torch.randn(1, 16, frames, height, width, device="cuda")
    with torch.inference_mode():
        vae.decode(latent[:, :, :2], return_dict=False)
        torch.cuda.synchronize()
        started = time.perf_counter()
        vae.decode(latent, return_dict=False)
        torch.cuda.synchronize()
    return time.perf_counter() - started
