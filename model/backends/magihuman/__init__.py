"""daVinci-MagiHuman: the single-stream audio-video transformer, its components and samplers.

paddock's own implementation, written from the original (GAIR-NLP/daVinci-MagiHuman) and
checked against it by `benchmarks/magihuman_parity.py`. The forward takes a packed batch of any
number of jobs (`packing.pack`), so jobs of different sizes share one transformer call.

    components = build_tiny_components()
    text = encode_prompt(components, "a horse gallops")
    batch = pack([SampleInput(video_latent, audio_latent, text)], PackingConfig())
    video_velocity, audio_velocity = unpack(batch, *components.transformer(batch))[0]

`backend.MagiHumanBackend` serves it through the engine (registry `backend: magihuman`): each
job's stages and sampler state in `staged`, its admission in `inputs`, the original's one-job
loop in `reference`, its options in `settings`, Ulysses context parallelism in `ulysses`.
"""

from __future__ import annotations

from model.backends.magihuman.audio import (
    OUTPUT_SAMPLE_RATE,
    audio_tokens,
    decode_audio,
    fourier_resample,
    video_latent_frames,
)
from model.backends.magihuman.checkpoint import load_transformer, original_state_dict, save_transformer
from model.backends.magihuman.components import (
    NEGATIVE_PROMPT,
    MagiHumanComponents,
    build_tiny_components,
    decode_video,
    encode_image,
    encode_prompt,
    load_components,
    save_components,
)
from model.backends.magihuman.config import (
    SR_1080P_LOCAL_ATTN_LAYERS,
    MagiHumanConfig,
    released_config,
    tiny_config,
)
from model.backends.magihuman.packing import PackedBatch, PackingConfig, SampleInput, pack, unpack
from model.backends.magihuman.samplers import (
    AUDIO_GUIDANCE,
    BASE_STEPS,
    DISTILLED_STEPS,
    SR_STEPS,
    DistilledSampler,
    FlowUniPCSampler,
    JointSampler,
    guided,
    overwrite_first_frame,
    sr_audio_input,
    sr_start_latent,
    video_guidance_scale,
)
from model.backends.magihuman.transformer import MagiHumanTransformer

__all__ = [
    "AUDIO_GUIDANCE",
    "BASE_STEPS",
    "DISTILLED_STEPS",
    "NEGATIVE_PROMPT",
    "OUTPUT_SAMPLE_RATE",
    "SR_1080P_LOCAL_ATTN_LAYERS",
    "SR_STEPS",
    "DistilledSampler",
    "FlowUniPCSampler",
    "JointSampler",
    "MagiHumanComponents",
    "MagiHumanConfig",
    "MagiHumanTransformer",
    "PackedBatch",
    "PackingConfig",
    "SampleInput",
    "audio_tokens",
    "build_tiny_components",
    "decode_audio",
    "decode_video",
    "encode_image",
    "encode_prompt",
    "fourier_resample",
    "guided",
    "load_components",
    "load_transformer",
    "original_state_dict",
    "overwrite_first_frame",
    "pack",
    "released_config",
    "save_components",
    "save_transformer",
    "sr_audio_input",
    "sr_start_latent",
    "tiny_config",
    "unpack",
    "video_guidance_scale",
    "video_latent_frames",
]
