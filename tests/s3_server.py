"""A real S3 HTTP endpoint for tests: moto's `ThreadedMotoServer` on a free port.

moto 5.2 accepts presigned URLs forever: it never checks `X-Amz-Date` + `X-Amz-Expires`. S3
answers such a URL with 403 `AccessDenied` ("Request has expired") once its lifetime is over, and
with 400 when the lifetime is over 7 days. `ExpiringMotoServer` puts exactly that check in front
of moto, so tests can see presigned URLs stop working.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

# Dummy credentials: moto accepts any, and boto3 must not find real ones.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_MAX_PRESIGN_S = 7 * 24 * 3600

_WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _s3_error(start_response: Callable[..., Any], status: str, code: str, message: str) -> list[bytes]:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body.encode()]


def enforce_presigned_expiry(app: _WsgiApp) -> _WsgiApp:
    """WSGI middleware: answer an expired SigV4 presigned URL as S3 does (403 AccessDenied)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        date, expires = query.get("X-Amz-Date"), query.get("X-Amz-Expires")
        if date and expires:
            signed_at = datetime.strptime(date[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
            lifetime = int(expires[0])
            if lifetime > _MAX_PRESIGN_S:
                return _s3_error(
                    start_response,
                    "400 Bad Request",
                    "AuthorizationQueryParametersError",
                    "X-Amz-Expires must be less than a week (in seconds) that is 604800",
                )
            if time.time() > signed_at + lifetime:
                return _s3_error(start_response, "403 Forbidden", "AccessDenied", "Request has expired")
        return app(environ, start_response)

    return wrapped


class ExpiringMotoServer(ThreadedMotoServer):
    """`ThreadedMotoServer` whose presigned URLs expire, as real S3's do."""

    def _server_entry(self) -> None:
        app = enforce_presigned_expiry(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@contextmanager
def moto_s3() -> Iterator[str]:
    """Run an S3 endpoint on 127.0.0.1 (a free port) until the block exits; yields its URL."""
    server = ExpiringMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def aws_env() -> Iterator[dict[str, str]]:
    """Dummy credentials in `os.environ` (restored afterwards); real AWS config is hidden."""
    saved = dict(os.environ)
    os.environ.update(AWS_ENV)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    try:
        yield dict(AWS_ENV)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 client on the test endpoint, for setting up and inspecting buckets."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )
