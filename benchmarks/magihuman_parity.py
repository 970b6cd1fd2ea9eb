"""Parity of paddock's MagiHuman transformer and samplers with the original implementation.

Runs the original daVinci-MagiHuman modules (imported at runtime from a source tree given on the
command line, never part of paddock) and paddock's, with the same random weights and inputs, and
prints the max abs differences:

    git -C <mirror of GAIR-NLP/daVinci-MagiHuman> archive HEAD inference | tar -x -C /tmp/magihuman-src
    .venv/bin/pip install -e '.[parity]'      # einops and unfoldNd, the original's CPU dependencies
    .venv/bin/python -m benchmarks.magihuman_parity /tmp/magihuman-src

Cases: t2v- and i2v-shaped inputs (video + audio + text) through a few layers of each kind
(per-modality gelu7, shared swiglu7, per-modality swiglu7), the 1080p SR layout (frame-local
attention, coords v1), the frame-local attention kernel alone in fp32, and the two samplers
(flow UniPC, the distilled DDIM step).

The original's own math runs; only what cannot run on a CPU is replaced, inside this script:

- `magi_compiler` (its graph compiler): `magi_compile` leaves the class as it is and
  `magi_register_custom_op` exposes the function as `torch.ops.infra.<name>`, as it would;
- `flash_attn.flash_attn_interface.flash_attn_func`: exact softmax attention computed in fp32
  (grouped-query heads, output in the input dtype, log-sum-exp on request), FlashAttention's
  contract;
- the data proxy's `.cuda()` / `.to("cuda")` calls stay on the CPU while it runs;
- a one-process gloo group stands in as its context-parallel group (Ulysses is then a no-op);
- `inference.pipeline` is registered as a bare package so that its `__init__` (the whole
  pipeline: whisper, VAEs, TurboVAED) is not imported.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import math
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from model.backends.magihuman import attention, checkpoint, config, packing, samplers, transformer


class FlashAttentionStandIn:
    """FlashAttention-2's `flash_attn_func` on [batch, tokens, heads, d] with grouped-query heads,
    output in the input dtype and, on request, the log-sum-exp [batch, heads, tokens].

    `exact`: softmax attention computed in fp32, then rounded; otherwise PyTorch's SDPA on the
    half-precision inputs (the kernel paddock's CPU path runs). Both meet FlashAttention's
    contract; they differ by output rounding, which shows how far rounding alone moves the result.
    """

    def __init__(self) -> None:
        self.exact = False

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, return_attn_probs: bool = False, **_: Any
    ) -> Any:
        qf, kf, vf = (x.transpose(1, 2) for x in (q, k, v))
        if self.exact or return_attn_probs:
            groups = q.shape[2] // k.shape[2]
            qf, kf, vf = (
                qf.float(),
                kf.float().repeat_interleave(groups, 1),
                vf.float().repeat_interleave(groups, 1),
            )
            scores = qf @ kf.transpose(-1, -2) / math.sqrt(q.shape[-1])
            out = (torch.softmax(scores, dim=-1) @ vf).transpose(1, 2).to(q.dtype)
            return (out, torch.logsumexp(scores, dim=-1), None) if return_attn_probs else out
        return F.scaled_dot_product_attention(qf, kf, vf, enable_gqa=True).transpose(1, 2)


FLASH_ATTENTION = FlashAttentionStandIn()


def _register_custom_op(name: str, **_: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    namespace, op = name.split("::")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(getattr(torch.ops, namespace), op, fn)
        return fn

    return register


def _install_stand_ins(source: Path) -> None:
    def module(name: str, **attrs: Any) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        return mod

    module("magi_compiler", magi_compile=lambda **_: lambda cls: cls)
    module("magi_compiler.api", magi_register_custom_op=_register_custom_op)
    module("magi_compiler.config", CompileConfig=object)
    module("flash_attn", __path__=[])
    module("flash_attn.flash_attn_interface", flash_attn_func=FLASH_ATTENTION)
    sys.path.insert(0, str(source))
    module("inference.pipeline", __path__=[str(source / "inference" / "pipeline")])


@contextlib.contextmanager
def _cuda_calls_on_cpu() -> Iterator[None]:
    cuda, to = torch.Tensor.cuda, torch.Tensor.to

    def on_cpu(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        args = tuple("cpu" if arg == "cuda" else arg for arg in args)
        return to(self, *args, **kwargs)

    torch.Tensor.cuda = lambda self, *_, **__: self  # type: ignore[method-assign]
    torch.Tensor.to = on_cpu  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda, torch.Tensor.to = cuda, to  # type: ignore[method-assign]


def _init_single_process_group() -> None:
    import torch.distributed as dist

    store = tempfile.NamedTemporaryFile(delete=False)  # noqa: SIM115 (the group outlives this call)
    dist.init_process_group("gloo", init_method=f"file://{store.name}", rank=0, world_size=1)
    state = importlib.import_module("inference.infra.distributed.parallel_state")
    state._CONTEXT_PARALLEL_GROUP = dist.group.WORLD


@dataclass
class Original:
    """Handles on the original's modules, once the stand-ins are in place."""

    dit: Any
    common: Any
    data_proxy: Any
    scheduler: Any

    @classmethod
    def load(cls, source: Path) -> Original:
        _install_stand_ins(source)
        _init_single_process_group()
        return cls(
            dit=importlib.import_module("inference.model.dit.dit_module"),
            common=importlib.import_module("inference.common"),
            data_proxy=importlib.import_module("inference.pipeline.data_proxy"),
            scheduler=importlib.import_module("inference.pipeline.scheduler_unipc"),
        )

    def build(self, arch: config.MagiHumanConfig, generator: torch.Generator) -> Any:
        fields = arch.to_json()
        model_config = self.common.config.ModelConfig(
            **fields, num_heads_q=arch.num_heads, num_heads_kv=arch.num_kv_heads
        )
        model = self.dit.DiTModel(model_config).eval()
        with torch.no_grad():
            for name, param in model.named_parameters():
                std = 0.1 if name.endswith("norm.weight") else 1 / math.sqrt(param.shape[-1])
                values = torch.randn(param.shape, generator=generator) * std
                param.copy_(values.to(param.dtype))
        return model


def _paddock_copy(original_model: Any, arch: config.MagiHumanConfig, dtype: torch.dtype) -> Any:
    model = transformer.MagiHumanTransformer(arch, dtype).eval()
    state = {
        checkpoint.paddock_name(key): tensor
        for key, tensor in original_model.state_dict().items()
        if key != checkpoint.ROPE_BANDS_KEY
    }
    model.load_state_dict(state, strict=True)
    return model


@dataclass(frozen=True)
class Case:
    name: str
    latent: tuple[int, int, int]  # latent frames, height, width (in latent cells)
    text_tokens: int
    image: bool  # i2v: frame 0 holds a clean image latent


def _inputs(case: Case, arch: config.MagiHumanConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    frames, height, width = case.latent
    video = torch.randn(config.LATENT_CHANNELS, frames, height, width, generator=generator)
    if case.image:
        video[:, :1] = torch.randn(config.LATENT_CHANNELS, 1, height, width, generator=generator) * 0.5
    audio = torch.randn((frames - 1) * 4 + 1, arch.audio_in_channels, generator=generator)
    text = torch.randn(case.text_tokens, arch.text_in_channels, generator=generator)
    return {"video": video, "audio": audio, "text": text}


def _run_original(
    original: Original, model: Any, inputs: dict[str, torch.Tensor], style: str, reach: int, local: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    proxy_config = original.common.DataProxyConfig(coords_style=style, frame_receptive_field=-1)
    proxy = original.data_proxy.MagiDataProxy(proxy_config)
    padded_text = torch.nn.functional.pad(inputs["text"], (0, 0, 0, 5))  # the original pads prompts
    eval_input = types.SimpleNamespace(
        x_t=inputs["video"][None],
        audio_x_t=inputs["audio"][None],
        audio_feat_len=[inputs["audio"].shape[0]],
        txt_feat=padded_text[None],
        txt_feat_len=[inputs["text"].shape[0]],
    )
    with _cuda_calls_on_cpu(), torch.no_grad():
        x, coords, modality, varlen, _ = proxy.process_input(eval_input)
        handler = None
        if local:
            item = proxy.get_saved_data("simple_packed_data")[0]
            q_ranges, k_ranges = original.data_proxy.calc_local_qk_range(
                item.video_token_num, item.audio_feat_len + item.txt_feat_len, inputs["video"].shape[1], reach
            )
            kinds = torch.zeros(q_ranges.shape[0], dtype=torch.int32)
            handler = original.dit.FFAHandler(q_ranges, k_ranges, x.shape[0], x.shape[0], kinds, None)
        out = model(x, coords, modality, varlen, handler)
        video, audio = proxy.process_output(out)
    return video[0], audio[0]


def _run_paddock(
    model: Any, samples: list[dict[str, torch.Tensor]], style: str, reach: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    packing_config = packing.PackingConfig(coords_style=style, frame_receptive_field=reach)  # type: ignore[arg-type]
    batch = packing.pack([packing.SampleInput(**sample) for sample in samples], packing_config)
    with torch.no_grad():
        return packing.unpack(batch, *model(batch))


def _max_diff(
    a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]
) -> tuple[float, float]:
    return tuple(float((x.float() - y.float()).abs().max()) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def transformer_parity(original: Original, seed: int) -> None:
    base = config.tiny_config(
        num_layers=6, modality_layers=2, hidden_size=128, head_dim=32, num_query_groups=2
    )
    sr = config.tiny_config(
        num_layers=4, modality_layers=1, hidden_size=128, head_dim=32, local_attention=True
    )
    layouts = [
        (
            "base (coords v2)",
            base,
            "v2",
            11,
            [Case("t2v", (3, 4, 6), 7, False), Case("i2v", (2, 6, 4), 5, True)],
        ),
        ("sr 1080p (frame-local attention, coords v1)", sr, "v1", 1, [Case("t2v", (5, 2, 4), 6, False)]),
    ]
    print(
        "transformer: max |paddock - original| of the velocity, video / audio, against the original run with"
    )
    print(f"{'':34s}{'SDPA attention stand-in':>26s}{'exact fp32 attention stand-in':>34s}")
    for title, arch, style, reach, cases in layouts:
        generator = torch.Generator().manual_seed(seed)
        original_model = original.build(arch, generator)
        ours = {
            dtype: _paddock_copy(original_model, arch, dtype) for dtype in (torch.bfloat16, torch.float32)
        }
        inputs = [_inputs(case, arch, generator) for case in cases]
        local = bool(arch.local_attn_layers)
        references = []
        for exact in (False, True):
            FLASH_ATTENTION.exact = exact
            references.append(
                [_run_original(original, original_model, x, style, reach, local) for x in inputs]
            )
        batched = _run_paddock(ours[torch.bfloat16], inputs, style, reach)
        sizes = f"{arch.num_layers} layers, hidden {arch.hidden_size}, per-modality layers {arch.mm_layers}"
        print(f"  {title}: {sizes}")
        for index, case in enumerate(cases):
            alone = {
                dtype: _run_paddock(model, [inputs[index]], style, reach)[0] for dtype, model in ours.items()
            }
            std = "/".join(f"{float(t.float().std()):.2f}" for t in references[0][index])
            print(f"    {case.name}: latent {case.latent}, {case.text_tokens} text tokens, output std {std}")
            floor = "{:.2e} / {:.2e}".format(*_max_diff(references[0][index], references[1][index]))
            print(f"      {'the original, SDPA vs exact':28s}{'':>26s}{floor:>34s}")
            for label, result in (
                ("bf16 matmuls, alone", alone[torch.bfloat16]),
                ("bf16 matmuls, batched", batched[index]),
                ("fp32 matmuls, alone", alone[torch.float32]),
            ):
                cells = ["{:.2e} / {:.2e}".format(*_max_diff(result, ref[index])) for ref in references]
                print(f"      {label:28s}{cells[0]:>26s}{cells[1]:>34s}")


def local_attention_parity(original: Original, seed: int) -> None:
    """The frame-local kernel alone, in fp32: the original's range decomposition with its
    log-sum-exp merge against paddock's windowed SDPA calls."""
    print("frame-local attention kernel, fp32: max |paddock - original| (7 frames x 6 tokens + 9 audio/text)")
    generator = torch.Generator().manual_seed(seed)
    frames, per_frame, tail = 7, 6, 9
    tokens = frames * per_frame + tail
    q = torch.randn(tokens, 4, 16, generator=generator)
    k, v = (torch.randn(tokens, 2, 16, generator=generator) for _ in range(2))
    FLASH_ATTENTION.exact = True
    span = (attention.SampleSpan(0, tokens, frames * per_frame, frames),)
    for reach in (0, 1, 2, 11):
        with _cuda_calls_on_cpu():
            q_ranges, k_ranges = original.data_proxy.calc_local_qk_range(
                frames * per_frame, tail, frames, reach
            )
        reference, _ = original.dit._custom_flex_flash_attn_func(q, k, v, q_ranges, k_ranges)
        ours = attention.attend(q, k, v, attention.AttentionPlan.build(span, reach, q.device), local=True)
        print(f"  receptive field {reach:2d} frames: {float((ours - reference).abs().max()):.2e}")


def sampler_parity(original: Original, seed: int) -> None:
    print("samplers: max |paddock - original| on the final latent after every step")
    generator = torch.Generator().manual_seed(seed)
    video = torch.randn(config.LATENT_CHANNELS, 3, 4, 4, generator=generator)
    audio = torch.randn(9, config.AUDIO_LATENT_CHANNELS, generator=generator)
    target_v, target_a = torch.randn_like(video), torch.randn_like(audio)

    def velocity(x: torch.Tensor, target: torch.Tensor, step: int) -> torch.Tensor:
        return x - target + 0.05 * step * torch.tanh(x)

    reference = original.scheduler.FlowUniPCMultistepScheduler()
    reference_audio = original.scheduler.FlowUniPCMultistepScheduler()
    reference.set_timesteps(samplers.BASE_STEPS, shift=samplers.FLOW_SHIFT)
    reference_audio.set_timesteps(samplers.BASE_STEPS, shift=samplers.FLOW_SHIFT)
    ours = samplers.FlowUniPCSampler(samplers.BASE_STEPS)
    rv, ra, pv, pa = video[None].clone(), audio[None].clone(), video.clone(), audio.clone()
    for index, t in enumerate(reference.timesteps):
        rv = reference.step(velocity(rv, target_v[None], index), t, rv, return_dict=False)[0]
        ra = reference_audio.step(velocity(ra, target_a[None], index), t, ra, return_dict=False)[0]
        pv, pa = ours.step(index, pv, velocity(pv, target_v, index), pa, velocity(pa, target_a, index))
    timesteps = float((ours.timesteps - reference.timesteps).abs().max())
    video_diff, audio_diff = _max_diff((pv, pa), (rv[0], ra[0]))
    print(f"  flow UniPC, {samplers.BASE_STEPS} steps: timesteps {timesteps:.0f}", end="")
    print(f"  video {video_diff:.3e}  audio {audio_diff:.3e}")

    ddim = original.scheduler.FlowUniPCMultistepScheduler()
    ddim.set_timesteps(samplers.DISTILLED_STEPS, shift=samplers.FLOW_SHIFT)
    torch.manual_seed(seed)
    ours_ddim = samplers.DistilledSampler(torch.Generator().manual_seed(seed))
    rv, ra, pv, pa = video[None].clone(), audio[None].clone(), video.clone(), audio.clone()
    for index in range(samplers.DISTILLED_STEPS):
        rv = ddim.step_ddim(velocity(rv, target_v[None], index), index, rv)
        ra = ddim.step_ddim(velocity(ra, target_a[None], index), index, ra)
        pv, pa = ours_ddim.step(index, pv, velocity(pv, target_v, index), pa, velocity(pa, target_a, index))
    sigmas = float((ours_ddim.sigmas - ddim.sigmas).abs().max())
    video_diff, audio_diff = _max_diff((pv, pa), (rv[0], ra[0]))
    print(f"  distilled DDIM, {samplers.DISTILLED_STEPS} steps: sigmas {sigmas:.1e}", end="")
    print(f"  video {video_diff:.3e}  audio {audio_diff:.3e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "source", type=Path, help="a checkout of GAIR-NLP/daVinci-MagiHuman (holding inference/)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.source / "inference" / "model" / "dit" / "dit_module.py").exists():
        parser.error(f"{args.source} holds no inference/model/dit/dit_module.py")
    for package in ("einops", "unfoldNd"):
        if importlib.util.find_spec(package) is None:
            parser.error(f"the original needs {package}: pip install -e '.[parity]'")
    original = Original.load(args.source.resolve())
    transformer_parity(original, args.seed)
    local_attention_parity(original, args.seed)
    sampler_parity(original, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
