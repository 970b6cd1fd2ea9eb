"""The daVinci-MagiHuman transformer's architecture: the released 15B sizes and tiny builders.

One config describes the base, distilled and 540p super-resolution DiTs (they share the
architecture); the 1080p super-resolution DiT adds frame-local attention on 32 of its 40 layers.
Field names follow the original `ModelConfig` (`inference/common/config.py`), so a released
`config.json` maps onto this dataclass one to one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# Modality ids, in the order the checkpoints stack their per-modality weights.
VIDEO, AUDIO, TEXT = 0, 1, 2
NUM_MODALITIES = 3

# The released pipeline around the transformer (`EvaluationConfig`, `DataProxyConfig`).
VIDEO_FPS = 25  # video frames per second; also the audio latent rate (one latent per frame)
VAE_STRIDE = (4, 16, 16)  # Wan 2.2 TI2V-5B VAE: time, height, width
LATENT_CHANNELS = 48
PATCH_SIZE = (1, 2, 2)  # time, height, width, in latent cells per token
AUDIO_LATENT_CHANNELS = 64
TEXT_MAX_TOKENS = 640  # T5-Gemma prompt length the original pads or trims to

# The 1080p SR DiT's frame-local layers (the original's `SR2_1080` override).
SR_1080P_LOCAL_ATTN_LAYERS = (0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18, 20, 21, 22)
SR_1080P_LOCAL_ATTN_LAYERS += (24, 25, 26, 28, 29, 30, 32, 33, 34, 35, 36, 37, 38, 39)

# Keys of a released or converted `config.json` that describe training or a data pipeline,
# not the transformer's weights; reading a config skips them.
_FOREIGN_KEYS = frozenset(
    {
        "activation_type",
        "checkpoint_qk_layernorm_rope",
        "params_dtype",
        "tread_config",
        "tread_selection_rate",
        "tread_start_layer_idx",
        "tread_end_layer_idx",
        "patch_size",
        "spatial_rope_interpolation",
        "num_heads_q",
        "num_heads_kv",
    }
)


@dataclass(frozen=True)
class MagiHumanConfig:
    """Sizes and layer roles of the single-stream audio-video transformer.

    Layers in `mm_layers` hold one copy of every projection and norm per modality (video, audio,
    text, stacked on the output dimension); the others are shared. `gelu7_layers` use the
    ungated gelu7 MLP (width 4 x hidden), the rest swiglu7 (gated, width 8/3 x hidden).
    """

    num_layers: int = 40
    hidden_size: int = 5120
    head_dim: int = 128
    num_query_groups: int = 8
    video_in_channels: int = LATENT_CHANNELS * 4
    audio_in_channels: int = AUDIO_LATENT_CHANNELS
    text_in_channels: int = 3584
    mm_layers: tuple[int, ...] = (0, 1, 2, 3, 36, 37, 38, 39)
    gelu7_layers: tuple[int, ...] = (0, 1, 2, 3)
    local_attn_layers: tuple[int, ...] = ()
    post_norm_layers: tuple[int, ...] = ()
    enable_attn_gating: bool = True

    def __post_init__(self) -> None:
        if self.hidden_size % self.head_dim:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of head_dim {self.head_dim}")
        if self.head_dim % 8:
            raise ValueError(f"head_dim {self.head_dim} must be a multiple of 8 (3-axis RoPE on 3/4 of it)")
        if self.num_heads % self.num_query_groups:
            raise ValueError(f"{self.num_heads} query heads do not split into {self.num_query_groups} groups")
        for name in ("mm_layers", "gelu7_layers", "local_attn_layers", "post_norm_layers"):
            outside = [i for i in getattr(self, name) if not 0 <= i < self.num_layers]
            if outside:
                raise ValueError(f"{name} names layers {outside} outside 0..{self.num_layers - 1}")

    @property
    def num_heads(self) -> int:
        return self.hidden_size // self.head_dim

    @property
    def num_kv_heads(self) -> int:
        return self.num_query_groups

    def modalities(self, layer: int) -> int:
        """How many weight copies layer `layer` holds: 3 in the modality layers, else 1."""
        return NUM_MODALITIES if layer in self.mm_layers else 1

    def mlp_gated(self, layer: int) -> bool:
        return layer not in self.gelu7_layers

    def mlp_width(self, layer: int) -> int:
        """The MLP's inner width (the original's rounding: 13652 at hidden 5120)."""
        if self.mlp_gated(layer):
            return int(self.hidden_size * 4 * 2 / 3) // 4 * 4
        return self.hidden_size * 4

    def to_json(self) -> dict[str, Any]:
        """The config in the original's field names, as a `transformer/config.json` holds it."""
        data = asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MagiHumanConfig:
        """Read a released or converted `config.json`; unknown keys are an error, so a config
        for another model is refused rather than half-read."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key.startswith("_") or key in _FOREIGN_KEYS:
                continue
            if key not in known:
                raise ValueError(f"config.json: unknown MagiHuman field {key!r}")
            values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


def released_config(variant: str) -> MagiHumanConfig:
    """The released DiT's config: "base", "distill", "sr_540p" (same sizes) or "sr_1080p"."""
    if variant in ("base", "distill", "sr_540p"):
        return MagiHumanConfig()
    if variant == "sr_1080p":
        return MagiHumanConfig(local_attn_layers=SR_1080P_LOCAL_ATTN_LAYERS)
    raise ValueError(f"unknown MagiHuman variant {variant!r}; choose base, distill, sr_540p or sr_1080p")


def tiny_config(
    *,
    num_layers: int = 4,
    modality_layers: int = 1,
    hidden_size: int = 64,
    head_dim: int = 16,
    num_query_groups: int = 2,
    text_in_channels: int = 32,
    local_attention: bool = False,
) -> MagiHumanConfig:
    """A toy-sized config of the same layout: `modality_layers` per-modality layers at each end
    (gelu7 at the front, as in the release), shared layers between; with `local_attention`
    every layer but the last uses frame-local attention, as the 1080p SR DiT does."""
    if 2 * modality_layers > num_layers:
        raise ValueError(f"{modality_layers} modality layers at each end do not fit in {num_layers} layers")
    front = tuple(range(modality_layers))
    back = tuple(range(num_layers - modality_layers, num_layers))
    return MagiHumanConfig(
        num_layers=num_layers,
        hidden_size=hidden_size,
        head_dim=head_dim,
        num_query_groups=num_query_groups,
        text_in_channels=text_in_channels,
        mm_layers=front + back,
        gelu7_layers=front,
        local_attn_layers=tuple(range(num_layers - 1)) if local_attention else (),
    )
