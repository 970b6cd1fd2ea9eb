"""`python -m benchmarks.hardening`: what abusive requests cost a running facade (issue 8's probes).

Point it at a running `paddock api` (or `serve`) on Redis, with the facade's process id so its
memory can be read from /proc::

    redis-server --port 6390 --save "" --appendonly no &
    PADDOCK_QUEUE_URL=redis://127.0.0.1:6390/0 PADDOCK_API_KEYS=sk-probe paddock api &
    python -m benchmarks.hardening --base-url http://127.0.0.1:8000 --redis-url redis://127.0.0.1:6390/0 \
        --api-key sk-probe --pid $(pgrep -f "server api")

It prints, one probe per block:
1. a create with a huge prompt: the status, the bytes the query answer carries, the facade's RSS
   growth and Redis's `used_memory` growth;
2. listing with `--tasks` stored tasks (written straight into the queue): the latency of
   `GET /api/v1/tasks?page_size=10`, and task queries per second alone and while a client lists;
3. a forged upload streamed with chunked encoding: the bytes sent before the answer came;
4. decoding at the pixel cap: the facade's peak RSS (VmHWM) growth for one 10000x10000 PNG and for
   an r2v request with nine of them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import select
import socket
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import redis

from server.jobs import make_task_queue
from server.jobs.job import JobSpec, TaskRecord
from server.keys import tenant_id_for

CREATE = "/api/v1/services/aigc/video-generation/video-synthesis"
MB = 1024 * 1024


def _rss(pid: int, field: str = "VmRSS") -> int:
    """A /proc/<pid>/status memory field in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found for pid {pid}")


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"}


def probe_big_prompt(client: httpx.Client, key: str, pid: int, redis_url: str, mb: int) -> None:
    r = redis.Redis.from_url(redis_url)
    used = int(r.info("memory")["used_memory"])
    rss = _rss(pid)
    body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "x" * (mb * MB)}, "parameters": {}}
    started = time.perf_counter()
    response = client.post(CREATE, json=body, headers=_headers(key))
    seconds = time.perf_counter() - started
    answer = 0
    if response.status_code == 200:
        task_id = response.json()["output"]["task_id"]
        answer = len(client.get(f"/api/v1/tasks/{task_id}", headers=_headers(key)).content)
    grown_rss = (_rss(pid) - rss) / MB
    grown_redis = (int(r.info("memory")["used_memory"]) - used) / MB
    print(f"[1] create with a {mb} MB prompt: HTTP {response.status_code} in {seconds:.2f} s")
    print(f"    query answer {answer / MB:.2f} MB; facade RSS +{grown_rss:.1f} MB")
    print(f"    Redis used_memory +{grown_redis:.1f} MB")
    r.close()


async def _store_tasks(redis_url: str, key: str, count: int) -> None:
    queue = make_task_queue(redis_url, ttl_s=86_400)
    tenant = tenant_id_for(key)
    now = time.time()
    spec = JobSpec("happyhorse-1.0-t2v", "t2v", "a horse", 1280, 720, 5.0, 1, True, "720P", "16:9")
    try:
        for start in range(0, count, 50):
            batch = [
                TaskRecord(
                    task_id=str(uuid.uuid4()),
                    request_id="probe",
                    tenant=tenant,
                    model=spec.model,
                    spec=spec,
                    submit_time=now - 3600 + (start + i) * 0.01,
                    orig_prompt=spec.prompt,
                )
                for i in range(min(50, count - start))
            ]
            await asyncio.gather(*(queue.submit(record) for record in batch))
    finally:
        await queue.close()


async def _timed_gets(client: httpx.AsyncClient, path: str, key: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = await client.get(path, headers=_headers(key))
        response.raise_for_status()
        latencies.append(time.perf_counter() - started)
    return latencies


async def probe_listing(base_url: str, redis_url: str, key: str, tasks: int, seconds: float) -> None:
    await _store_tasks(redis_url, key, tasks)
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        page = await client.get("/api/v1/tasks?page_size=1", headers=_headers(key))
        task_id = page.json()["data"][0]["task_id"]
        lists = await _timed_gets(client, "/api/v1/tasks?page_size=10", key, seconds)
        alone = await _timed_gets(client, f"/api/v1/tasks/{task_id}", key, seconds)
        listing = asyncio.create_task(_timed_gets(client, "/api/v1/tasks?page_size=10", key, seconds))
        beside = await _timed_gets(client, f"/api/v1/tasks/{task_id}", key, seconds)
        await listing
    print(f"[2] {tasks} stored tasks: list page_size=10 p50 {statistics.median(lists) * 1000:.1f} ms, ")
    print(f"    {len(lists) / seconds:.1f} lists/s; queries alone {len(alone) / seconds:.0f}/s, ")
    print(f"    beside a listing client {len(beside) / seconds:.0f}/s (worst {max(beside) * 1000:.0f} ms)")


def probe_forged_upload(base_url: str, pid: int, total_mb: int) -> None:
    """Stream a forged form over a raw socket, watching for the answer after every 256 KB: the
    bytes sent until it came, and what the facade wrote to disk meanwhile (its spool)."""
    host, port = base_url.split("//", 1)[1].split(":")
    boundary = "paddockprobe"
    fields = {
        "OSSAccessKeyId": "paddock",
        "Signature": "forged",
        "policy": base64.b64encode(b'{"expiration":"2099-01-01T00:00:00.000Z","conditions":[]}').decode(),
        "key": "dashscope-instant/x/y/file.bin",
    }
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    written = _io_field(pid, "wchar")
    started = time.perf_counter()
    sent, answer = 0, b""
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(
            b"POST /api/v1/uploads/oss HTTP/1.1\r\nHost: probe\r\nTransfer-Encoding: chunked\r\n"
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
            + chunk(head.encode())
        )
        block = b"\0" * (256 * 1024)
        while sent < total_mb * MB:
            if select.select([conn], [], [], 0)[0]:
                break
            conn.sendall(chunk(block))
            sent += len(block)
        else:
            conn.sendall(b"0\r\n\r\n")
        answer = conn.recv(200)
    seconds = time.perf_counter() - started
    spooled = _io_field(pid, "wchar") - written
    status = answer.split(b"\r\n", 1)[0].decode()
    print(f"[3] forged upload of up to {total_mb} MB, chunked: {status}")
    print(f"    {sent / MB:.2f} MB of file sent before the answer, {seconds:.2f} s")
    print(f"    written by the facade meanwhile (spool): {spooled / MB:.2f} MB")


def _io_field(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value)
    raise RuntimeError(f"{field} not in /proc/{pid}/io")


def _black_png(side: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def probe_decode(client: httpx.Client, key: str, pid: int) -> None:
    png = _black_png(10_000)
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    base = _rss(pid, "VmHWM")
    one = {"model": "happyhorse-1.0-i2v", "input": {"media": [{"type": "first_frame", "url": uri}]}}
    status = client.post(CREATE, json=one, headers=_headers(key)).status_code
    peak_one = _rss(pid, "VmHWM")
    nine = {
        "model": "happyhorse-1.0-r2v",
        "input": {"prompt": "[Image 1] runs", "media": [{"type": "reference_image", "url": uri}] * 9},
    }
    status_nine = client.post(CREATE, json=nine, headers=_headers(key)).status_code
    peak_nine = _rss(pid, "VmHWM")
    print(f"[4] a {len(png) / 1024:.0f} KB 10000x10000 PNG: HTTP {status}")
    print(f"    peak RSS +{(peak_one - base) / MB:.0f} MB")
    print(f"    r2v with nine of them: HTTP {status_nine}, peak RSS +{(peak_nine - base) / MB:.0f} MB")
    print(f"    RSS left after both: {_rss(pid) / MB:.0f} MB")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hardening", description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--pid", type=int, required=True, help="the facade's process id")
    parser.add_argument("--prompt-mb", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--upload-mb", type=int, default=200)
    parser.add_argument("--probes", default="1234", help="which probes to run, e.g. 23")
    args = parser.parse_args(argv)
    with httpx.Client(base_url=args.base_url, timeout=300) as client:
        if "1" in args.probes:
            probe_big_prompt(client, args.api_key, args.pid, args.redis_url, args.prompt_mb)
        if "2" in args.probes:
            asyncio.run(probe_listing(args.base_url, args.redis_url, args.api_key, args.tasks, args.seconds))
        if "3" in args.probes:
            probe_forged_upload(args.base_url, args.pid, args.upload_mb)
        if "4" in args.probes:
            probe_decode(client, args.api_key, args.pid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
