"""TaskService: the task lifecycle as the facade sees it (create, query, list, cancel, delete),
for every surface: the DashScope routes call it with their bodies, the OpenAI-style surface with
the DashScope body it translated its request into.

Everything a request can get wrong is checked here, before anything is stored: the schema, the
model, every media rule. Only then are the inputs written to the object store and the task
submitted; if submitting fails, the inputs are removed again, so nothing is half-written.

An `Idempotency-Key` makes a create safe to retry: the same key with the same request returns the
task the first call made. The queue decides atomically (`TaskQueue.submit`), so of concurrent
duplicates exactly one stores a task, and the others remove the inputs they had stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.registry import Endpoint, ModelSpec, TaskFamily
from server.api import schemas
from server.api.uploads.service import UploadService
from server.api.webhooks import webhook_guard
from server.errors import (
    AccessDenied,
    InternalError,
    InvalidParameter,
    InvalidURL,
    ModelUnavailable,
    Throttling,
    UnsupportedOperation,
    idempotency_key_reused,
    url_error,
)
from server.jobs.base import Limits, QuotaExceeded
from server.jobs.idempotency import IdempotencyKey, IdempotencyMismatch
from server.jobs.job import JobSpec, MediaRef, TaskRecord, TaskStatus
from server.keys import Tenant
from server.media import (
    EDIT_REFERENCE_RULE,
    EDIT_VIDEO_RULE,
    FIRST_FRAME_RULE,
    R2V_REFERENCE_RULE,
    ImageInfo,
    ImageRule,
    MediaFetcher,
    VideoInfo,
    inspect_image,
    inspect_video,
)
from server.metrics import MetricsRecorder
from server.netguard import parse_ip, parse_target
from server.wiring import Wiring

log = logging.getLogger(__name__)

MAX_EDIT_OUTPUT_S = 15.0
# The rule each image is checked against, by task family and media type (API.md §2).
IMAGE_RULES: dict[tuple[TaskFamily, str], ImageRule] = {
    (TaskFamily.I2V, "first_frame"): FIRST_FRAME_RULE,
    (TaskFamily.R2V, "reference_image"): R2V_REFERENCE_RULE,
    (TaskFamily.VIDEO_EDIT, "reference_image"): EDIT_REFERENCE_RULE,
}


# Media already in hand (an uploaded form file, a finished video being remixed) stand in a body
# under a URL of this scheme; any other URL is fetched, and this scheme is never fetched.
ATTACHED_SCHEME = "attached://"


@dataclass(frozen=True)
class CallContext:
    """Who is calling, with which headers, and with which media already in hand (`attached`,
    keyed by the `attached://...` URL that stands for each in the body)."""

    tenant: Tenant
    request_id: str
    workspace: str | None = None
    oss_resolve: bool = False
    idempotency_key: str | None = None
    attached: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """What a create made: its task, and whether an earlier call with the same Idempotency-Key
    had made it (`replayed`)."""

    record: TaskRecord
    replayed: bool = False


@dataclass(frozen=True)
class _Input:
    """One fetched and validated medium, not yet stored."""

    type: str
    data: bytes
    info: ImageInfo | VideoInfo


class TaskService:
    """Create, query, list and cancel tasks for one tenant at a time."""

    def __init__(
        self, wiring: Wiring, *, fetcher: MediaFetcher, uploads: UploadService, metrics: MetricsRecorder
    ) -> None:
        self.settings = settings = wiring.settings
        self.queue = wiring.queue
        self.store = wiring.store
        self.registry = wiring.registry
        self.fetcher = fetcher
        self.uploads = uploads
        self.metrics = metrics
        # Bounds what decoding costs the whole process, however many images requests carry.
        self.decodes = asyncio.Semaphore(max(1, settings.max_concurrent_decodes))
        self._webhook_guard = webhook_guard(settings)

    # ------------------------------------------------------------------------------ create

    def resolve_model(self, body: Any, endpoint: Endpoint, tenant: Tenant) -> ModelSpec:
        """The spec for `body["model"]` posted to `endpoint`, or the DashScope error for it."""
        name = schemas.model_name(body)
        spec = self.registry.get(name)
        if spec is None or spec.endpoint != endpoint:
            raise url_error()
        if not tenant.may_use(name):
            raise AccessDenied(f"This API key has no access to model {name}.")
        return spec

    async def create(
        self, body: Any, endpoint: Endpoint, ctx: CallContext, *, remixed_from: str | None = None
    ) -> Submission:
        """Validate `body`, store its inputs and submit the task (or find the one an earlier call
        with the same Idempotency-Key made)."""
        spec = self.resolve_model(body, endpoint, ctx.tenant)
        idempotency = self._idempotency(body, endpoint, ctx, remixed_from)
        if idempotency is not None and (earlier := await self._earlier(ctx, idempotency)) is not None:
            return Submission(earlier, replayed=True)
        if self.settings.require_live_worker and spec.name not in await self.queue.served_models():
            raise ModelUnavailable(f"No worker serves model {spec.name} right now, please retry later.")
        req = schemas.parse_create(body, spec)
        webhook_url = self._webhook_url(req.webhook_url, ctx.tenant)
        inputs = await asyncio.gather(*(self._load_input(item, spec.family, ctx) for item in req.media))
        task_id = str(uuid.uuid4())
        submit_time = schemas.now()
        expires_at = submit_time + self.settings.task_ttl_s
        media = await asyncio.to_thread(self._store_inputs, task_id, list(inputs), expires_at)
        record = TaskRecord(
            task_id=task_id,
            request_id=ctx.request_id,
            tenant=ctx.tenant.id,
            model=spec.name,
            spec=self._job_spec(spec, req, list(inputs), media),
            workspace=ctx.workspace,
            submit_time=submit_time,
            orig_prompt=req.prompt,
            webhook_url=webhook_url,
            remixed_from=remixed_from,
        )
        limits = Limits.from_quota(ctx.tenant.quota, queue_depth=self.settings.max_queue_depth)
        try:
            owner = await self.queue.submit(record, limits=limits, idempotency=idempotency)
        except BaseException as exc:
            await asyncio.to_thread(self._delete_keys, [m.key for m in media])
            if isinstance(exc, QuotaExceeded):
                raise throttled(exc) from None
            if isinstance(exc, IdempotencyMismatch):
                raise idempotency_key_reused(ctx.idempotency_key or "", exc.task_id) from None
            raise
        if owner != task_id:
            # A concurrent call with the same key won the race: its task stands, ours never existed.
            await asyncio.to_thread(self._delete_keys, [m.key for m in media])
            winner = await self.queue.get(owner)
            if winner is None:
                raise InternalError("The task this Idempotency-Key names vanished; please retry.")
            return Submission(winner, replayed=True)
        log.info("task submitted", extra={"task_id": task_id, "model": spec.name})
        return Submission(record)

    def _idempotency(
        self, body: Any, endpoint: Endpoint, ctx: CallContext, remixed_from: str | None
    ) -> IdempotencyKey | None:
        """The call's Idempotency-Key with a fingerprint of everything that decides its task."""
        if ctx.idempotency_key is None:
            return None
        request = {
            "endpoint": endpoint.value,
            "body": body,
            "workspace": ctx.workspace,
            "attached": {url: hashlib.sha256(data).hexdigest() for url, data in ctx.attached.items()},
            "remixed_from": remixed_from,
        }
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=repr)
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        ttl_s = min(self.settings.idempotency_ttl_s, self.settings.task_ttl_s)
        return IdempotencyKey(ctx.idempotency_key, fingerprint, ttl_s)

    async def _earlier(self, ctx: CallContext, idempotency: IdempotencyKey) -> TaskRecord | None:
        """The task an earlier call with this key made, if it asked for the same; a 409 if not.
        A cheap look before any media is fetched; `submit` decides for good."""
        bound = await self.queue.idempotent_task(ctx.tenant.id, idempotency)
        if bound is None:
            return None
        task_id, fingerprint = bound
        if fingerprint != idempotency.fingerprint:
            raise idempotency_key_reused(idempotency.key, task_id)
        return await self.get(task_id, ctx.tenant)

    def _webhook_url(self, requested: str | None, tenant: Tenant) -> str | None:
        """Where the task's final state goes: the create's `webhook_url`, else the key's. A create's
        URL must be http(s) and, when its host is an IP, an allowed one (host names are resolved
        and checked at every delivery); the key must have a secret to sign with."""
        if requested is None:
            return tenant.webhook_url
        where = "parameters.webhook_url"
        if tenant.webhook_secret is None:
            raise InvalidParameter(
                f"{where}: this API key has no webhook_secret to sign deliveries with; "
                "the operator sets one in the key file.",
                param="webhook_url",
            )
        target = parse_target(requested, where)
        literal = parse_ip(target.host)
        if literal is not None and not self._webhook_guard.ip_allowed(target.host, literal):
            raise InvalidURL(f"{where}: URL host {target.host} is not a public address", param="webhook_url")
        return requested

    async def _load_input(self, item: schemas.MediaItem, family: TaskFamily, ctx: CallContext) -> _Input:
        is_video = item.type == "video"
        max_bytes = self.settings.max_video_bytes if is_video else self.settings.max_image_bytes
        data = await self._fetch(item, ctx, max_bytes=max_bytes, allow_data_uri=not is_video)
        async with self.decodes:
            if is_video:
                video = await asyncio.to_thread(inspect_video, data, EDIT_VIDEO_RULE, field=item.field)
                return _Input(item.type, data, video)
            image = await asyncio.to_thread(
                inspect_image,
                data,
                IMAGE_RULES[(family, item.type)],
                field=item.field,
                max_pixels=self.settings.max_image_pixels,
            )
            return _Input(item.type, data, image)

    async def _fetch(
        self, item: schemas.MediaItem, ctx: CallContext, *, max_bytes: int, allow_data_uri: bool
    ) -> bytes:
        attached = ctx.attached.get(item.url)
        if attached is not None:
            if len(attached) > max_bytes:
                raise InvalidParameter(f"{item.field}: file size must be at most {max_bytes} bytes")
            return attached
        if item.url.startswith("oss://"):
            if not ctx.oss_resolve:
                raise InvalidURL(
                    f"{item.field}: oss:// URLs need the header X-DashScope-OssResourceResolve: enable."
                )
            return await asyncio.to_thread(self.uploads.resolve, item.url, ctx.tenant, max_bytes=max_bytes)
        return await self.fetcher.fetch(
            item.url, max_bytes=max_bytes, field=item.field, allow_data_uri=allow_data_uri
        )

    def _store_inputs(self, task_id: str, inputs: list[_Input], expires_at: float) -> tuple[MediaRef, ...]:
        refs: list[MediaRef] = []
        try:
            for i, item in enumerate(inputs):
                key = f"inputs/{task_id}/{i}.{item.info.format}"
                self.store.put_bytes(key, item.data, item.info.content_type, expires_at)
                duration = item.info.duration_s if isinstance(item.info, VideoInfo) else 0.0
                refs.append(
                    MediaRef(
                        item.type, key, item.info.content_type, item.info.width, item.info.height, duration
                    )
                )
        except BaseException:
            self._delete_keys([r.key for r in refs])
            raise
        return tuple(refs)

    def _delete_keys(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self.store.delete(key)
            except Exception:
                log.exception("could not delete object %s", key)

    def _job_spec(
        self, spec: ModelSpec, req: schemas.CreateRequest, inputs: list[_Input], media: tuple[MediaRef, ...]
    ) -> JobSpec:
        source = next((i.info for i in inputs if i.type in ("first_frame", "video")), None)
        source_wh = (source.width, source.height) if source is not None else None
        width, height = schemas.output_size(req.resolution, req.ratio, source_wh)
        duration = float(req.duration)
        input_video_s = 0.0
        if isinstance(source, VideoInfo):
            input_video_s = source.duration_s
            duration = min(source.duration_s, MAX_EDIT_OUTPUT_S)
        return JobSpec(
            model=spec.name,
            family=spec.family.value,
            prompt=req.prompt,
            width=width,
            height=height,
            duration_s=duration,
            seed=req.seed if req.seed is not None else secrets.randbelow(schemas.MAX_SEED + 1),
            watermark=req.watermark,
            resolution=req.resolution,
            ratio=req.ratio,
            media=media,
            audio_setting=req.audio_setting,
            input_video_duration_s=input_video_s,
        )

    # ------------------------------------------------------------------------------ query

    async def get(self, task_id: str, tenant: Tenant) -> TaskRecord | None:
        """The tenant's task, or None (unknown, expired, or another tenant's: indistinguishable)."""
        record = await self.queue.get(task_id)
        if record is None or record.tenant != tenant.id:
            return None
        return record

    def video_url(self, record: TaskRecord) -> str | None:
        if record.result_key is None:
            return None
        return self.store.url(record.result_key, record.submit_time + self.settings.task_ttl_s)

    async def cancel(self, task_id: str, tenant: Tenant) -> TaskRecord:
        """Cancel a PENDING task of this tenant; anything else is `UnsupportedOperation`."""
        if await self.get(task_id, tenant) is not None:
            record = await self.queue.cancel(task_id)
            if record is not None:
                self.metrics.observe_canceled(record.model)  # workers never see canceled tasks
                return record
        raise UnsupportedOperation(
            "Failed to cancel the task, please confirm if the task is in PENDING status."
        )

    async def list_tasks(self, tenant: Tenant, query: schemas.ListQuery) -> schemas.TaskPage:
        """One page of the tenant's tasks matching `query`, newest first unless `oldest_first`
        (API.md §3 list)."""
        records, total = await self.queue.list_tasks(
            tenant.id, query.filters, query.page_no, query.page_size, oldest_first=query.oldest_first
        )
        return schemas.TaskPage(records, total, query.page_no, query.page_size)

    async def delete(self, task_id: str, tenant: Tenant, *, objects: Sequence[str] = ()) -> TaskRecord | None:
        """Delete the tenant's task: a PENDING one is canceled first; a RUNNING one is refused
        (`UnsupportedOperation`). Its record goes, then its inputs, its result and `objects`
        (derived files). None when the tenant has no such task."""
        record = await self.get(task_id, tenant)
        if record is None:
            return None
        if record.status == TaskStatus.PENDING and (canceled := await self.queue.cancel(task_id)):
            self.metrics.observe_canceled(canceled.model)
        if not await self.queue.delete(task_id):
            raise UnsupportedOperation(f"Task {task_id} is running; it can be deleted once it has finished.")
        keys = [m.key for m in record.spec.media] + list(objects)
        if record.result_key is not None:
            keys.append(record.result_key)
        await asyncio.to_thread(self._delete_keys, keys)
        log.info("task deleted", extra={"task_id": task_id})
        return record


# API.md §4: a key's own quota is Throttling.RateQuota; the shared queue being full is Throttling.
_THROTTLE_MESSAGES = {
    "rate": "Requests rate limit exceeded, please try again later.",
    "pending": "Too many pending tasks for this API key, please try again later.",
    "depth": "The task queue is full, please try again later.",
}


def throttled(exc: QuotaExceeded) -> Throttling:
    """The 429 for a refused submit."""
    code = "Throttling" if exc.kind == "depth" else "Throttling.RateQuota"
    return Throttling(_THROTTLE_MESSAGES[exc.kind], code=code)
