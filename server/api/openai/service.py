"""VideosService: the OpenAI-style Videos surface over `TaskService`, so a task is one task
whichever surface created or reads it: creates become DashScope create bodies (`translate`), and
retrieve, list, delete and content read the same records.

- list: cursor pages (`after` a video id, `limit`, `order`) over the tenant's live tasks.
- remix: a new video-edit task on the finished video, with a new prompt.
- content: the MP4, or a preview made from it on first request and kept beside it in the store
  (`results/{id}/thumbnail.webp`, `results/{id}/spritesheet.jpg`) until the task expires.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from model.registry import Endpoint
from server.api import schemas
from server.api.openai import translate
from server.api.openai.wire import OPENAI_STATUS
from server.api.tasks.service import ATTACHED_SCHEME, CallContext, Submission, TaskService
from server.errors import InvalidParameter, NotFound
from server.jobs.base import TaskFilter
from server.jobs.job import TaskRecord, TaskStatus
from server.keys import Tenant
from server.media.previews import spritesheet_jpeg, thumbnail_webp

Variant = Literal["video", "thumbnail", "spritesheet"]
DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT = 20, 100
REMIX_SOURCE_URL = ATTACHED_SCHEME + "remix_source"


@dataclass(frozen=True)
class _Preview:
    name: str
    content_type: str
    render: Callable[[bytes], bytes]


PREVIEWS: dict[str, _Preview] = {
    "thumbnail": _Preview("thumbnail.webp", "image/webp", thumbnail_webp),
    "spritesheet": _Preview("spritesheet.jpg", "image/jpeg", spritesheet_jpeg),
}


@dataclass(frozen=True)
class Content:
    """A stored file to answer a content download with."""

    key: str
    content_type: str
    expires_at: float


class VideosService:
    """Create, retrieve, list, delete, remix and download videos for one tenant at a time."""

    def __init__(self, tasks: TaskService) -> None:
        self.tasks = tasks
        self.settings = tasks.settings
        self.ttl_s = tasks.settings.task_ttl_s

    async def create(self, request: translate.VideoRequest, ctx: CallContext) -> Submission:
        """Run `request` as a DashScope create on the model it resolves to."""
        has_reference = request.reference is not None
        spec = translate.resolve_model(request.model, has_reference, self.settings, self.tasks.registry)
        body = translate.dashscope_body(request, spec)
        return await self.tasks.create(body, Endpoint.VIDEO_GENERATION, ctx)

    async def retrieve(self, video_id: str, tenant: Tenant) -> TaskRecord:
        """The tenant's video, or 404 (unknown, expired and other tenants' alike)."""
        record = await self.tasks.get(video_id, tenant)
        if record is None:
            raise _not_found(video_id)
        return record

    async def list_videos(
        self, tenant: Tenant, *, after: str | None, limit: int, oldest_first: bool
    ) -> tuple[list[TaskRecord], bool]:
        """Up to `limit` videos past `after` in the order asked for, and whether more follow."""
        now = schemas.now()
        window = TaskFilter(start_time=now - self.ttl_s, end_time=now + 1)
        if after is not None:
            anchor = await self.tasks.get(after, tenant)
            if anchor is None:
                raise InvalidParameter(f"after: no video {after!r}.", param="after")
            if oldest_first:
                window = dataclasses.replace(window, start_time=anchor.submit_time)
            else:
                window = dataclasses.replace(window, end_time=anchor.submit_time)
        # The anchor itself (and any task submitted at the very same time before it in this order)
        # comes first in the window: skip up to it, then take limit + 1 to learn `has_more`.
        past_anchor = after is None
        found: list[TaskRecord] = []
        page_no, size = 1, limit + 2
        while len(found) <= limit:
            query = schemas.ListQuery(page_no, size, window, oldest_first=oldest_first)
            page = await self.tasks.list_tasks(tenant, query)
            for record in page.records:
                if past_anchor:
                    found.append(record)
                past_anchor = past_anchor or record.task_id == after
            if len(page.records) < size:
                break
            page_no += 1
        return found[:limit], len(found) > limit

    async def delete(self, video_id: str, tenant: Tenant) -> None:
        """Delete the video, its inputs, result and previews (a queued one is canceled first)."""
        previews = [f"results/{video_id}/{p.name}" for p in PREVIEWS.values()]
        if await self.tasks.delete(video_id, tenant, objects=previews) is None:
            raise _not_found(video_id)

    async def remix(self, video_id: str, body: Any, ctx: CallContext) -> Submission:
        """A video-edit task on the completed video `video_id` with the prompt in `body`."""
        if not isinstance(body, dict):
            raise InvalidParameter("The request body must be a JSON object.")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidParameter("prompt is required.", param="prompt")
        source = await self.retrieve(video_id, ctx.tenant)
        if source.status != TaskStatus.SUCCEEDED or source.result_key is None:
            raise InvalidParameter(
                f"Only a completed video can be remixed; {video_id} is not.", param="video_id"
            )
        model = self.settings.openai_remix_model
        if model not in self.tasks.registry:
            raise InvalidParameter(
                f"Remixing needs the video-edit model {model}, which this server does not serve."
            )
        video = await asyncio.to_thread(self.tasks.store.get_bytes, source.result_key)
        params: dict[str, Any] = {"resolution": source.spec.resolution, "watermark": source.spec.watermark}
        if body.get("webhook_url") is not None:
            params["webhook_url"] = body["webhook_url"]
        edit = {
            "model": model,
            "input": {"prompt": prompt, "media": [{"type": "video", "url": REMIX_SOURCE_URL}]},
            "parameters": params,
        }
        attached = dataclasses.replace(ctx, attached={REMIX_SOURCE_URL: video})
        return await self.tasks.create(edit, Endpoint.VIDEO_GENERATION, attached, remixed_from=source.task_id)

    async def content(self, video_id: str, tenant: Tenant, variant: str) -> Content:
        """The stored file behind a download: the MP4, or a preview (made now if missing)."""
        if variant not in ("video", *PREVIEWS):
            raise InvalidParameter(
                f"variant must be one of video, thumbnail, spritesheet, got {variant!r}.", param="variant"
            )
        record = await self.retrieve(video_id, tenant)
        if record.status != TaskStatus.SUCCEEDED or record.result_key is None:
            status = OPENAI_STATUS[record.status]
            raise InvalidParameter(
                f"Video {video_id} is not completed (status: {status}); it has no content."
            )
        expires_at = record.submit_time + self.ttl_s
        if variant == "video":
            return Content(record.result_key, "video/mp4", expires_at)
        preview = PREVIEWS[variant]
        key = f"results/{video_id}/{preview.name}"
        store = self.tasks.store
        if not await asyncio.to_thread(store.exists, key):
            async with self.tasks.decodes:
                video = await asyncio.to_thread(store.get_bytes, record.result_key)
                image = await asyncio.to_thread(preview.render, video)
            await asyncio.to_thread(store.put_bytes, key, image, preview.content_type, expires_at)
        return Content(key, preview.content_type, expires_at)


def _not_found(video_id: str) -> NotFound:
    return NotFound(f"Video with id {video_id!r} not found.", param="video_id")
