"""`paddock serve | api | worker`: builds Settings once and passes it down."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI

from server.api.deps import Services
from server.config import Settings
from server.keys import KeyRing

log = logging.getLogger("paddock")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paddock", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="facade + in-process worker, one process (the embedded defaults)")
    sub.add_parser("api", help="the HTTP facade alone")
    sub.add_parser("worker", help="one worker process on the queue named by PADDOCK_QUEUE_URL")
    args = parser.parse_args(argv)

    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "serve":
        return _serve(settings, with_worker=True)
    if args.command == "api":
        return _serve(settings, with_worker=False)
    return asyncio.run(_worker(settings))


def _serve(settings: Settings, *, with_worker: bool) -> int:
    import uvicorn

    from server.api.app import create_app

    keys, generated = KeyRing.load_or_create(settings.api_keys, settings.data_dir)
    if generated is not None:
        # Printed once at start so a first-time user can copy it; it also sits in the data folder.
        print(f"paddock: API key (stored in {settings.data_dir / 'api_key'}): {generated}", flush=True)
    app = create_app(
        settings, keys=keys, worker_factory=_in_process_worker(settings) if with_worker else None
    )
    print(f"paddock: serving the DashScope API at {settings.base_url}/api/v1", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower())
    return 0


def _in_process_worker(
    settings: Settings,
) -> Callable[[FastAPI, Services], Awaitable[Callable[[], Awaitable[None]]]]:
    async def start(app: FastAPI, services: Services) -> Callable[[], Awaitable[None]]:
        from model.generator import VideoGenerator
        from server.worker.runner import JobRunner

        runner = JobRunner(
            services.queue,
            services.store,
            VideoGenerator(services.registry),
            task_ttl_s=settings.task_ttl_s,
            task_timeout_s=settings.task_timeout_s,
            name=settings.worker_name,
        )
        app.state.worker = runner
        task = asyncio.create_task(runner.run())

        async def stop() -> None:
            runner.stop()
            try:
                await asyncio.wait_for(task, timeout=60)
            except TimeoutError:
                task.cancel()

        return stop

    return start


async def _worker(settings: Settings) -> int:
    from model.generator import VideoGenerator
    from model.registry import load_registry
    from server.jobs import make_task_queue
    from server.signing import Signer, load_or_create_secret
    from server.storage import make_object_store
    from server.worker.runner import JobRunner

    if settings.queue_url.startswith("memory://"):
        print("paddock worker: PADDOCK_QUEUE_URL must name a shared queue (redis://...)", file=sys.stderr)
        return 2
    registry = load_registry(settings.models)
    queue = make_task_queue(settings.queue_url, ttl_s=settings.task_ttl_s)
    store = make_object_store(settings, Signer(load_or_create_secret(settings)))
    runner = JobRunner(
        queue,
        store,
        VideoGenerator(registry),
        task_ttl_s=settings.task_ttl_s,
        task_timeout_s=settings.task_timeout_s,
        name=settings.worker_name,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    try:
        await runner.run()
    finally:
        await queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
