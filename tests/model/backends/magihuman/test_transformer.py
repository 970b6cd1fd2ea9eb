"""The transformer: outputs, per-modality routing, precision, and batching across jobs."""

from __future__ import annotations

import pytest
import torch

from model.backends.magihuman.config import AUDIO, TEXT, VIDEO, tiny_config
from model.backends.magihuman.packing import PackingConfig, pack, unpack
from model.backends.magihuman.transformer import MagiHumanTransformer
from tests.support.magihuman import make_sample


def run(model: MagiHumanTransformer, samples: list, config: PackingConfig | None = None) -> list:
    batch = pack(samples, config or PackingConfig())
    with torch.no_grad():
        return unpack(batch, *model(batch))


def test_forward_gives_a_velocity_for_every_video_and_audio_latent(
    tiny_transformer: MagiHumanTransformer,
) -> None:
    sample = make_sample(3, 4, 6, 7, seed=0)
    ((video, audio),) = run(tiny_transformer, [sample])
    assert video.shape == sample.video.shape and audio.shape == sample.audio.shape
    assert video.dtype == audio.dtype == torch.float32
    assert torch.isfinite(video).all() and video.std() > 0.1 and audio.std() > 0.1
    # The output depends on the text: another prompt, another velocity.
    other = make_sample(3, 4, 6, 7, seed=0)
    other = type(other)(other.video, other.audio, other.text + 1.0)
    ((video_other, _),) = run(tiny_transformer, [other])
    assert not torch.allclose(video, video_other, atol=1e-3)


def test_a_batch_of_jobs_of_different_sizes_equals_each_job_alone(
    tiny_transformer: MagiHumanTransformer,
) -> None:
    samples = [
        make_sample(3, 4, 6, 7, seed=1),
        make_sample(2, 2, 2, 12, seed=2),
        make_sample(4, 6, 2, 3, seed=3),
    ]
    together = run(tiny_transformer, samples)
    for sample, (video, audio) in zip(samples, together, strict=True):
        ((video_alone, audio_alone),) = run(tiny_transformer, [sample])
        torch.testing.assert_close(video, video_alone, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(audio, audio_alone, atol=2e-5, rtol=1e-5)


def test_frame_local_layers_batch_like_the_rest(tiny_local_transformer: MagiHumanTransformer) -> None:
    config = PackingConfig(coords_style="v1", frame_receptive_field=1)
    samples = [make_sample(5, 2, 4, 4, seed=4), make_sample(3, 4, 2, 6, seed=5)]
    together = run(tiny_local_transformer, samples, config)
    for sample, (video, audio) in zip(samples, together, strict=True):
        ((video_alone, audio_alone),) = run(tiny_local_transformer, [sample], config)
        torch.testing.assert_close(video, video_alone, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(audio, audio_alone, atol=2e-5, rtol=1e-5)
    # With a receptive field of one frame the far frames are out of sight.
    ((video_wide, _),) = run(tiny_local_transformer, samples[:1], PackingConfig(coords_style="v1"))
    assert not torch.allclose(together[0][0], video_wide, atol=1e-4)


def layer_output(model: MagiHumanTransformer, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer `index` applied to a fixed random residual of one packed job, and the modality ids."""
    batch = pack([make_sample(2, 2, 4, 5, seed=6)], PackingConfig())
    layout = model.layout(batch)
    hidden = torch.randn(
        batch.num_tokens, model.config.hidden_size, generator=torch.Generator().manual_seed(7)
    )
    with torch.no_grad():
        return model.layers[index](hidden, layout), batch.modality


@pytest.mark.parametrize("modality", [VIDEO, AUDIO, TEXT])
@pytest.mark.parametrize("weight", ["attn.out", "mlp.up", "mlp.down", "mlp.norm"])
def test_a_modality_layer_routes_each_token_through_its_own_copy(modality: int, weight: str) -> None:
    model = MagiHumanTransformer(tiny_config()).eval()
    for index in model.config.mm_layers:
        before, modalities = layer_output(model, index)
        param = model.layers[index].get_parameter(f"{weight}.weight")
        with torch.no_grad():
            param.view(3, -1)[modality] += 0.5
        after, _ = layer_output(model, index)
        changed = (after - before).abs().amax(dim=1) > 1e-6
        assert torch.equal(changed, modalities == modality), f"layer {index} {weight}"


def test_a_shared_layer_uses_one_weight_for_every_token() -> None:
    model = MagiHumanTransformer(tiny_config()).eval()
    shared = next(i for i in range(model.config.num_layers) if i not in model.config.mm_layers)
    before, _ = layer_output(model, shared)
    with torch.no_grad():
        model.layers[shared].mlp.up.weight.add_(0.5)
    after, _ = layer_output(model, shared)
    assert ((after - before).abs().amax(dim=1) > 1e-6).all()


def test_bf16_matmuls_keep_an_fp32_residual_stream(tiny_transformer: MagiHumanTransformer) -> None:
    bf16 = MagiHumanTransformer(tiny_transformer.config, torch.bfloat16).eval()
    bf16.load_state_dict(tiny_transformer.state_dict())
    assert bf16.matmul_dtype == torch.bfloat16
    assert bf16.layers[0].attn.norm.weight.dtype == torch.float32
    assert bf16.video_embed.weight.dtype == torch.float32
    sample = make_sample(2, 4, 4, 5, seed=8)
    ((video, audio),) = run(bf16, [sample])
    ((video_fp32, _),) = run(tiny_transformer, [sample])
    assert video.dtype == audio.dtype == torch.float32
    assert (video - video_fp32).abs().max() < 0.1 * video_fp32.abs().max()
