"""Settings: `PADDOCK_*` environment variables, optionally a YAML file (`PADDOCK_CONFIG`).

Built once by the CLI (or a test) and passed down; there is no module-level instance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# `PADDOCK_OPENAI_MODELS`' default: OpenAI's model names on the HappyHorse built-ins.
OPENAI_MODEL_ALIASES: dict[str, str | dict[str, str]] = {
    "sora-2": {"t2v": "happyhorse-1.0-t2v", "i2v": "happyhorse-1.0-i2v"},
    "sora-2-pro": {"t2v": "happyhorse-1.1-t2v", "i2v": "happyhorse-1.1-i2v"},
}


class Settings(BaseSettings):
    """Everything an operator can set. Defaults are the embedded one-process mode."""

    model_config = SettingsConfigDict(env_prefix="PADDOCK_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(default=None, description="base of the URLs handed out")
    queue_url: str = "memory://"
    storage_url: str = "file://./paddock-data"
    data_dir: Path = Path("./paddock-data")
    api_keys: str | None = Field(default=None, description="comma-separated keys or a YAML key file")
    models: str | None = Field(default=None, description="YAML model registry; None = tiny built-ins")
    task_ttl_s: int = 86_400
    upload_ttl_s: int = 172_800
    task_timeout_s: int = 10_800
    signing_secret: str | None = Field(default=None, description="HMAC key for URLs and upload policies")

    # Media fetching (DESIGN.md §3).
    media_allow_private: bool = False
    media_timeout_s: float = 30.0
    media_max_redirects: int = 5
    media_allow_hosts: str = ""  # comma-separated hostnames or CIDRs allowed even when not public
    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 100 * 1024 * 1024
    # Pixels an input image may have (48 MP phone photos pass). JPEG and PNG are checked in bounded
    # memory whatever their size; a WebP is decoded in full, so this caps that decode.
    max_image_pixels: int = 50_000_000
    # Media checks (decodes) running at once in one facade process, over all requests.
    max_concurrent_decodes: int = 2
    max_upload_mb: int = 100
    # Largest request body (the upload route has its own limit, max_upload_mb): room for one
    # 20 MB image as a base64 data URI (26.7 MB) and the rest of a create body.
    max_body_bytes: int = 32 * 1024 * 1024

    # Worker.
    worker_name: str | None = None
    # Jobs a worker holds at once; the engine batches their steps.
    max_concurrent_jobs: int = 4
    log_level: str = "INFO"
    log_format: str = "json"  # json (one object per line) | text
    metrics_port: int = 9464  # `paddock worker` serves /metrics here; 0 disables

    # Queue reliability and fairness (server/jobs/janitor.py, README "Reliability").
    # A claim whose worker stops heartbeating (every claim_timeout_s / 4) this long is taken over.
    claim_timeout_s: float = 60.0
    max_attempts: int = 3  # attempts lost to dead workers before a job FAILs as poison
    max_queue_depth: int = 10_000  # waiting jobs over all keys; beyond it submit answers 429; 0 = off
    shutdown_grace_s: float = 30.0  # on SIGTERM, running jobs get this long, then are handed back

    # S3 object store (`PADDOCK_STORAGE_URL=s3://bucket/prefix`, server/storage/s3.py).
    s3_endpoint_url: str | None = Field(default=None, description="an S3-compatible endpoint (MinIO, ...)")
    s3_region: str | None = Field(default=None, description="default: AWS_DEFAULT_REGION, else us-east-1")
    s3_addressing_style: str = "auto"  # auto | path | virtual; auto means path when an endpoint is set
    # A CDN in front of the bucket: url() hands out unsigned CDN URLs, so the CDN must enforce access.
    public_base_url: str | None = None

    # Ray Serve workers (`paddock ray`, server/worker/deployment.py).
    ray_config: str = "deploy/serve_config.yaml"  # the Serve config file `paddock ray` deploys
    ray_address: str | None = None  # a running Ray cluster (`auto`, `ray://host:10001`); None starts one

    # Answer 503 ModelUnavailable for a model no live worker serves, instead of queueing the task
    # (off by default: with autoscaling from zero, queued tasks are what brings workers up).
    require_live_worker: bool = False

    # Idempotent submits: how long an `Idempotency-Key` stays bound to its task (never past the task).
    idempotency_ttl_s: int = 86_400

    # Webhooks (server/api/webhooks): delivery attempts, backoff between them, and where they may go.
    # The media allow settings apply too; these add webhook-only exceptions.
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 2.0  # before the 2nd attempt; doubles each time, up to the cap
    webhook_backoff_max_s: float = 600.0
    webhook_timeout_s: float = 10.0
    webhook_allow_private: bool = False
    webhook_allow_hosts: str = ""  # comma-separated hostnames or CIDRs
    webhook_poll_interval_s: float = 1.0  # how often an idle facade looks for due deliveries

    # The OpenAI-style Videos surface (`/v1/videos`): model aliases to registry names, either one
    # name or one per kind of create (`t2v` without an input_reference, `i2v` with an image).
    openai_models: dict[str, str | dict[str, str]] = Field(default_factory=lambda: dict(OPENAI_MODEL_ALIASES))
    openai_default_model: str = "sora-2"
    openai_remix_model: str = "happyhorse-1.0-video-edit"  # remixes are video edits

    @property
    def base_url(self) -> str:
        """The public base URL, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the YAML file, which wins over the defaults.
        return init_settings, env_settings, _YamlFileSource(settings_cls)


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by `PADDOCK_CONFIG`, keys without the prefix (`queue_url: ...`)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        import os

        path = os.environ.get("PADDOCK_CONFIG")
        self._data: dict[str, Any] = {}
        if path:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: expected a mapping of settings")
            self._data = {str(k).lower(): v for k, v in loaded.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}
