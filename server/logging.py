"""Structured logs: one JSON object per line, with the request and task in hand, and no secrets.

`configure_logging(level, fmt)` installs one root handler (stderr) for every process kind. The
facade middleware sets `request_id_var`, the worker sets `task_id_var` around each job; both are
contextvars, so they follow asyncio tasks and `asyncio.to_thread` into every log line.

`RedactFilter` sits on the handler, so it covers every logger (uvicorn's included): API keys
(`sk-...`), `Bearer ...` credentials, URL signatures (`sig=...`), `data:` URIs (image bytes) and
any extra field named like a secret are masked, and long strings are cut at 2 KB (tracebacks at
8 KB, keeping their end; the exception's type and message also get fields of their own).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["json", "text"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)

MAX_FIELD_CHARS = 2048
# Tracebacks keep their last lines (the exception's type and message come last).
MAX_TRACE_CHARS = 8192

# (pattern, replacement). Order matters: a data: URI is masked before anything scans its payload.
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"data:([\w/+.-]*)(;[\w=.-]+)*;base64,[A-Za-z0-9+/=_-]+"), r"data:\1;base64,<redacted>"),
    (re.compile(r"(?i)\bbearer\s+[^\s,;\"']+"), "Bearer ***"),
    # An API key: `sk-` not glued to a word before it (so `task-id` is left alone).
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9._-]{3,}"), "sk-***"),
    # A webhook signing secret (Standard Webhooks' `whsec_` prefix).
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_***"),
    (re.compile(r"(?i)([?&;]|\b)(sig|signature|x-amz-signature)=[^&\s\"']+"), r"\1\2=***"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\s,;\"'}]+"), r"\1***"),
)
# Every pattern above needs one of these substrings: text without any is left alone in one pass
# (most log lines), instead of one pass per pattern.
_SUSPECT = re.compile(r"(?i)data:|bearer|sk-|whsec_|sig|authorization")
# Extra fields whose value is a secret whatever it looks like.
_SECRET_KEYS = re.compile(r"(?i)(authorization|api_?key|secret|password|token|signature|cookie)")

# Attributes every LogRecord has; anything else on a record came from `extra={...}`. uvicorn's
# `color_message` (the message again, with terminal colour codes) is left out too.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def redact(text: str, *, limit: int = MAX_FIELD_CHARS, keep_tail: bool = False) -> str:
    """`text` with credentials, signatures and inline media masked, cut to `limit` characters:
    its head, or with `keep_tail` its end (where a traceback names the exception)."""
    if _SUSPECT.search(text):
        for pattern, replacement in _REDACTIONS:
            text = pattern.sub(replacement, text)
    if len(text) > limit:
        cut = len(text) - limit
        if keep_tail:
            return f"<truncated {cut} chars>...{text[cut:]}"
        text = f"{text[:limit]}...<truncated {cut} chars>"
    return text


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEYS.search(key) and value is not None:
        return "***"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"  # never raw media in a log line
    if isinstance(value, str):
        return redact(value)
    return value


class RedactFilter(logging.Filter):
    """Masks secrets in the message (arguments included) and in every `extra` field."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(key, value))
        return True


class ContextFilter(logging.Filter):
    """Adds `request_id` / `task_id` from the contextvars unless the call passed its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id_var), ("task_id", task_id_var)):
            if getattr(record, name, None) is None:
                value = var.get()
                if value is not None:
                    setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the context and extras."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and value is not None:
                body[key] = value
        if record.exc_info:
            exc_type, exc, _ = record.exc_info
            if exc_type is not None:
                body["error_type"] = exc_type.__name__
                body["error"] = redact(str(exc))
            body["exc"] = redact(self.formatException(record.exc_info), limit=MAX_TRACE_CHARS, keep_tail=True)
        return json.dumps(body, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic one-line format, with the request/task ids appended when known."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{k}={getattr(record, k)}" for k in ("request_id", "task_id") if getattr(record, k, None)]
        return f"{line} [{' '.join(ids)}]" if ids else line


def make_handler(fmt: LogFormat = "json", stream: TextIO | None = None) -> logging.Handler:
    """A stream handler with the context and redaction filters and the chosen formatter."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


def configure_logging(level: str | int = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Replace the root handlers with one redacting handler; idempotent.

    uvicorn's loggers are pointed at the root too (run uvicorn with `log_config=None`), so its
    lines get the same format and redaction."""
    if fmt not in ("json", "text"):
        raise ValueError(f"PADDOCK_LOG_FORMAT must be json or text, not {fmt!r}")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(fmt, stream))  # type: ignore[arg-type]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
