"""The tiny components: prompt features, video and audio VAEs, and the diffusers-style folder."""

from __future__ import annotations

from pathlib import Path

import torch

from model.backends.magihuman.audio import OUTPUT_SAMPLE_RATE, VAE_SAMPLE_RATE, decode_audio
from model.backends.magihuman.components import (
    MagiHumanComponents,
    build_tiny_components,
    decode_video,
    encode_image,
    encode_prompt,
    load_components,
    save_components,
)
from model.backends.magihuman.packing import PackingConfig, SampleInput, pack


def test_a_prompt_becomes_fp16_rounded_features_of_its_real_tokens(
    tiny_components: MagiHumanComponents,
) -> None:
    features = encode_prompt(tiny_components, "a horse gallops")
    assert features.shape == (len("a horse gallops") + 1, 32) and features.dtype == torch.float32
    assert torch.equal(features, features.half().float())
    assert not torch.allclose(features[:4], encode_prompt(tiny_components, "a cat sleeps")[:4])
    assert encode_prompt(tiny_components, "x" * 500).shape[0] == tiny_components.text_max_tokens


def test_the_video_vae_compresses_4x16x16_and_normalises_per_channel(
    tiny_components: MagiHumanComponents,
) -> None:
    vae = tiny_components.vae
    image = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latent = encode_image(vae, image)
    assert latent.shape == (48, 1, 4, 6)
    with torch.no_grad():
        raw = vae.encode(image[None, :, None]).latent_dist.mode()[0]
    mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)
    torch.testing.assert_close(latent, (raw - mean) / std)
    frames = decode_video(vae, torch.randn(1, 48, 3, 4, 6, generator=torch.Generator().manual_seed(1)))
    assert frames.shape == (1, 9, 64, 96, 3)
    assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0 and float(frames.std()) > 0.01


def test_audio_latents_decode_to_a_44_1_khz_stereo_track(tiny_components: MagiHumanComponents) -> None:
    latents = torch.randn(1, 26, 64, generator=torch.Generator().manual_seed(2))
    track = decode_audio(tiny_components.audio_vae, latents)
    assert track.shape == (1, 2, 26 * 2048 * OUTPUT_SAMPLE_RATE // VAE_SAMPLE_RATE)
    assert float(track.abs().max()) <= 1.0 and float(track.pow(2).mean()) > 1e-4
    other = decode_audio(tiny_components.audio_vae, latents + 1.0)
    assert not torch.allclose(track, other, atol=1e-3)


def test_the_diffusers_style_folder_round_trips_every_component(tmp_path: Path) -> None:
    components = build_tiny_components(3, with_sr=True)
    save_components(components, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audio_vae",
        "sr",
        "text_encoder",
        "tokenizer",
        "transformer",
        "vae",
    ]
    loaded = load_components(tmp_path, dtype=torch.float32, sr_local_attn_layers=(0, 1, 2))
    prompt = "rain on a tin roof"
    features = encode_prompt(loaded, prompt)
    assert torch.equal(features, encode_prompt(components, prompt))
    generator = torch.Generator().manual_seed(4)
    sample = SampleInput(
        torch.randn(48, 2, 2, 4, generator=generator), torch.randn(5, 64, generator=generator), features
    )
    batch = pack([sample], PackingConfig())
    for ours, theirs in (
        (loaded.transformer, components.transformer),
        (loaded.sr_transformer, components.sr_transformer),
    ):
        assert ours is not None and theirs is not None
        with torch.no_grad():
            for got, want in zip(ours(batch), theirs(batch), strict=True):
                assert torch.equal(got, want)
    assert loaded.sr_transformer is not None and loaded.sr_transformer.config.local_attn_layers == (0, 1, 2)
    latents = torch.randn(1, 48, 2, 2, 4, generator=generator)
    assert torch.equal(decode_video(loaded.vae, latents), decode_video(components.vae, latents))
    audio = torch.randn(1, 6, 64, generator=generator)
    assert torch.equal(decode_audio(loaded.audio_vae, audio), decode_audio(components.audio_vae, audio))
