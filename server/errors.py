"""DashScope errors (API.md §4), raised by services and rendered by one handler in `app.py`.

DashScopeError
├── InvalidParameter        400 InvalidParameter (and .DataInspection, BadRequest.Empty*)
├── InvalidURL              400 InvalidURL
├── UnsupportedOperation    400 UnsupportedOperation
├── InvalidApiKey           401 InvalidApiKey
├── AccessDenied            403 AccessDenied
├── NotFound                404 NotFound
├── Conflict                409 Conflict.IdempotencyKey (a key reused for another request)
├── PayloadTooLarge         413 InvalidParameter (a request body over the route's limit)
├── Throttling              429 Throttling / Throttling.RateQuota
├── InternalError           500 InternalError
└── ModelUnavailable        503 ModelUnavailable
"""

from __future__ import annotations


class DashScopeError(Exception):
    """An error the client sees as `{"request_id", "code", "message"}` with `status`."""

    status: int = 500
    code: str = "InternalError"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param  # the request field at fault, where one is (the OpenAI body's `param`)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidParameter(DashScopeError):
    status = 400
    code = "InvalidParameter"


class InvalidURL(DashScopeError):
    status = 400
    code = "InvalidURL"


class UnsupportedOperation(DashScopeError):
    status = 400
    code = "UnsupportedOperation"


class InvalidApiKey(DashScopeError):
    status = 401
    code = "InvalidApiKey"


class AccessDenied(DashScopeError):
    status = 403
    code = "AccessDenied"


class NotFound(DashScopeError):
    status = 404
    code = "NotFound"


class Conflict(DashScopeError):
    status = 409
    code = "Conflict"


class PayloadTooLarge(DashScopeError):
    status = 413
    code = "InvalidParameter"


class Throttling(DashScopeError):
    status = 429
    code = "Throttling"


class InternalError(DashScopeError):
    status = 500
    code = "InternalError"


class ModelUnavailable(DashScopeError):
    status = 503
    code = "ModelUnavailable"


def empty_model() -> InvalidParameter:
    return InvalidParameter("Model not found (model is empty).", code="BadRequest.EmptyModel")


def empty_input() -> InvalidParameter:
    return InvalidParameter("Input can not be empty.", code="BadRequest.EmptyInput")


def url_error() -> InvalidParameter:
    return InvalidParameter("url error, please check url!")


def download_failed(detail: str) -> InvalidParameter:
    return InvalidParameter(f"Failed to download the media: {detail}", code="InvalidParameter.DataInspection")


def idempotency_key_reused(key: str, task_id: str) -> Conflict:
    return Conflict(
        f"Idempotency-Key {key!r} was already used for a different request (task {task_id}) within "
        "its 24 h window; send a new key for a new request.",
        code="Conflict.IdempotencyKey",
        param="Idempotency-Key",
    )
