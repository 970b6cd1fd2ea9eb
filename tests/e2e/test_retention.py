"""Retention (API.md §6): after the task TTL a query answers UNKNOWN and the video URL stops serving."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from dashscope import VideoSynthesis

from tests.live_server import paddock_process, sdk_pointed_at

pytestmark = pytest.mark.slow

TTL_S = 20


def test_task_and_video_expire_with_the_ttl(tmp_path: Path) -> None:
    with paddock_process(tmp_path, env={"PADDOCK_TASK_TTL_S": str(TTL_S)}) as server, sdk_pointed_at(server):
        key = server.keys[0]
        submitted_at = time.time()
        rsp = VideoSynthesis.call(
            model="happyhorse-1.0-t2v", prompt="short lived", resolution="720P", duration=3, api_key=key
        )
        assert rsp.output.task_status == "SUCCEEDED", rsp
        url = rsp.output.video_url
        assert httpx.get(url, timeout=30).status_code == 200
        time.sleep(max(0.0, submitted_at + TTL_S + 1.0 - time.time()))
        expired = VideoSynthesis.fetch(rsp.output.task_id, api_key=key)
        assert expired.status_code == 200
        assert expired.output.task_status == "UNKNOWN"
        gone = httpx.get(url, timeout=30)
        assert gone.status_code in (403, 404)
        assert gone.json()["code"] in ("AccessDenied", "NotFound")
        listed = VideoSynthesis.list(api_key=key)
        assert listed.output["total"] == 0
