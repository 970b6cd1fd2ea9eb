"""`paddock serve | api | worker | ray | bench | loadtest | plan | storage init`: a tiny CLI that
builds Settings once and hands them to the part that runs (`server.api.app`,
`server.worker.factory`, ...)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from server.config import Settings
from server.keys import KeyRing
from server.logging import configure_logging

log = logging.getLogger("paddock")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paddock", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="facade + in-process worker, one process (the embedded defaults)")
    sub.add_parser("api", help="the HTTP facade alone")
    sub.add_parser("worker", help="one worker process on the queue named by PADDOCK_QUEUE_URL")
    ray_cmd = sub.add_parser("ray", help="the workers as Ray Serve replicas (deploy/serve_config.yaml)")
    ray_cmd.add_argument("--config", help="a Serve config file (default: PADDOCK_RAY_CONFIG)")
    ray_cmd.add_argument("--address", help="a Ray cluster (default: PADDOCK_RAY_ADDRESS, else a local one)")
    ray_cmd.add_argument("--non-blocking", action="store_true", help="deploy and return instead of waiting")
    bench = sub.add_parser("bench", help="benchmarks: `paddock bench engine|facade [--jobs N ...]`")
    bench.add_argument("target", choices=["engine", "facade"])
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    # Its options go to loadtests.cli untouched (REMAINDER cannot start with an option).
    sub.add_parser(
        "loadtest", add_help=False, help="offer a job mix at a rate over HTTP (loadtests/README.md)"
    )
    plan = sub.add_parser("plan", help="capacity planning: calibrate | predict | recommend | validate")
    plan.add_argument("plan_args", nargs=argparse.REMAINDER)
    storage = sub.add_parser("storage", help="manage the object store named by PADDOCK_STORAGE_URL")
    storage_init = storage.add_subparsers(dest="action", required=True).add_parser(
        "init", help="prepare the store: lifecycle rules on s3://, the folder on file://"
    )
    storage_init.add_argument("--create-bucket", action="store_true", help="create the S3 bucket first")
    args, rest = parser.parse_known_args(argv)
    if args.command == "loadtest":
        from loadtests.cli import loadtest_main

        return loadtest_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "bench":
        if args.target == "facade":
            from benchmarks.facade_bench import main as bench_facade

            return bench_facade(args.bench_args)
        from benchmarks.engine_bench import main as bench_engine

        return bench_engine(args.bench_args)
    if args.command == "plan":
        from loadtests.plan.cli import plan_main

        return plan_main(args.plan_args)

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        return _serve(settings, with_worker=True)
    if args.command == "api":
        return _serve(settings, with_worker=False)
    if args.command == "ray":
        # Before ray is imported: no token file under ~/.ray, no usage report over the network.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        from server.worker.deployment import deploy_from_cli

        blocking = not args.non_blocking
        return deploy_from_cli(settings, config=args.config, address=args.address, blocking=blocking)
    if args.command == "storage":
        from server.storage.admin import storage_init as init_storage

        init_storage(settings, create_bucket=args.create_bucket)
        return 0
    return asyncio.run(_worker(settings))


def _serve(settings: Settings, *, with_worker: bool) -> int:
    import uvicorn

    from server.api.app import create_app
    from server.api.http_protocol import http_protocol

    keys, generated = KeyRing.load_or_create(settings.api_keys, settings.data_dir)
    if generated is not None:
        # Printed once at start so a first-time user can copy it; it also sits in the data folder.
        print(f"paddock: API key (stored in {settings.data_dir / 'api_key'}): {generated}", flush=True)
    worker_factory = None
    if with_worker:
        from server.worker.factory import build_worker

        worker_factory = build_worker
    app = create_app(settings, keys=keys, worker_factory=worker_factory)
    print(f"paddock: serving the DashScope API at {settings.base_url}/api/v1", flush=True)
    # The key rides in the URL fragment, which browsers never send: it stays out of every log.
    link = f"{settings.base_url}/" + (f"#key={generated}" if generated is not None else "")
    print(f"paddock: open the playground at {link}", flush=True)
    # log_config=None keeps our JSON handler; the middleware logs each request (with its id and
    # without the query string), so uvicorn's own access line would only repeat it.
    uvicorn.run(
        app,
        http=http_protocol(),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
    )
    return 0


async def _worker(settings: Settings) -> int:
    from server.metrics import MetricsRecorder, PrometheusMetrics
    from server.wiring import wire
    from server.worker.factory import build_worker

    if settings.queue_url.startswith("memory://"):
        print("paddock worker: PADDOCK_QUEUE_URL must name a shared queue (redis://...)", file=sys.stderr)
        return 2
    prometheus = PrometheusMetrics()
    if settings.metrics_port:
        # Up before the models load, so a scrape sees paddock_workers_ready 0 while warming up.
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, registry=prometheus.registry)
    recorder = MetricsRecorder(prometheus)
    wiring = wire(settings, observer=recorder)
    runner = build_worker(wiring, recorder)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    try:
        await runner.run()
    finally:
        await wiring.queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
