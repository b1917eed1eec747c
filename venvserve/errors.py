"""One exception tree for everything the API can answer with an error.

    VenvserveError (status, code, message, hint)
     ├── BadRequest            400  invalid input, unsupported type, bad JSON
     ├── Unauthorized          401
     ├── Forbidden             403  a Host or cross-site Origin this server does not serve
     ├── NotFound              404  unknown model or env
     ├── Conflict              409  the resource is not in a state for this (a job not finished)
     ├── PayloadTooLarge       413
     ├── ClientGone            499  the client disconnected while queued (nobody reads it)
     ├── TooManyRequests       429  a model's queue is full (Retry-After)
     ├── Unavailable           503  model unavailable or failed, server draining
     ├── InsufficientStorage   507  the disk is full (spool, jobs)
     ├── WorkerCrashed         502  the worker died while holding the request
     ├── GatewayTimeout        504  the request outlived its timeout
     └── EnvBuildFailed        500  uv could not build the env (log tail attached)

Subprocess, worker-connection and uv failures are translated into these at the
boundary where they happen, so routes only ever see this tree.
"""


class VenvserveError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message, code=None, hint=None, status=None, headers=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.hint = hint
        self.status = status or self.status
        self.headers = headers or {}

    def payload(self):
        return error_body(self.code, self.message, self.hint)


def error_body(code: str, message: str, hint: str | None = None) -> dict:
    """The one JSON error shape: ``{"error": {"code", "message"[, "hint"]}}``."""
    error = {"code": code, "message": message}
    if hint:
        error["hint"] = hint
    return {"error": error}


class BadRequest(VenvserveError):
    status, code = 400, "bad_request"


class Unauthorized(VenvserveError):
    status, code = 401, "unauthorized"


class Forbidden(VenvserveError):
    status, code = 403, "forbidden"


class Conflict(VenvserveError):
    status, code = 409, "conflict"


class InsufficientStorage(VenvserveError):
    status, code = 507, "insufficient_storage"


class NotFound(VenvserveError):
    status, code = 404, "not_found"


class PayloadTooLarge(VenvserveError):
    status, code = 413, "file_too_large"


class ClientGone(VenvserveError):
    status, code = 499, "client_closed_request"


class TooManyRequests(VenvserveError):
    status, code = 429, "queue_full"


class Unavailable(VenvserveError):
    status, code = 503, "unavailable"


class WorkerCrashed(VenvserveError):
    status, code = 502, "worker_crashed"


class GatewayTimeout(VenvserveError):
    status, code = 504, "timeout"


class EnvBuildFailed(VenvserveError):
    status, code = 500, "env_build_failed"
