"""One record per HTTP request: metrics and the access log, in one pure ASGI middleware.

The middleware puts a small mutable :class:`RequestRecord` in a context
variable; whatever serves the request below it (the supervisor's calls, a
route) notes the model, the time spent queued for a worker and the time spent
on it. When the response is done, the record becomes one access-log line on
the ``venvserve.access`` logger and a few Prometheus observations.

Log levels: a request that used a model, changed something (not a GET) or
failed is logged at INFO; the rest (status polls, static files, /metrics,
/healthz) at DEBUG, so a page that polls does not flood the log. With
``--log-format json`` every line carries ``method, path, status, model,
queue_ms, inference_ms, total_ms, client`` as fields.
"""

import json
import logging
import time
from contextvars import ContextVar

log = logging.getLogger("venvserve.access")

ERROR_BODY_LIMIT = 16 * 1024  # an error answer's body is read for its code up to this size


class RequestRecord:
    __slots__ = ("model", "queue_s", "infer_s", "calls")

    def __init__(self):
        self.model: str | None = None
        self.queue_s = 0.0
        self.infer_s = 0.0
        self.calls = 0

    def note(self, model: str | None = None, queue_s: float = 0.0, infer_s: float = 0.0) -> None:
        """Add one worker call (a page, an image) of this request; times are summed."""
        if model:
            self.model = model
        self.queue_s += queue_s
        self.infer_s += infer_s
        self.calls += 1


CURRENT: ContextVar[RequestRecord | None] = ContextVar("venvserve_request", default=None)


def current() -> RequestRecord | None:
    return CURRENT.get()


def route_label(scope, fixed_paths: frozenset = frozenset()) -> str:
    """The matched route's template (bounded cardinality), never a raw path with ids in it."""
    path = getattr(scope.get("route"), "path", None)
    if path is not None:
        return path or "/"
    # Routes FastAPI matches without noting them in the scope (/docs, /openapi.json).
    return scope["path"] if scope["path"] in fixed_paths else "unmatched"


class ObserveMiddleware:
    """Pure ASGI: times the request, captures the status (and an error's code), then reports."""

    def __init__(self, app, metrics=None, fixed_paths=()):
        self.app = app
        self.metrics = metrics
        self.fixed_paths = frozenset(fixed_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        record = RequestRecord()
        token = CURRENT.set(record)
        started = time.perf_counter()
        status = 500
        error_body: list[bytes] | None = None

        async def send_wrapper(message):
            nonlocal status, error_body
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                if status >= 400:
                    error_body = []
            elif error_body is not None and kind == "http.response.body":
                if sum(map(len, error_body)) < ERROR_BODY_LIMIT:
                    error_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = 500
            raise
        finally:
            CURRENT.reset(token)
            total = time.perf_counter() - started
            code = error_code(error_body, status) if status >= 400 else None
            route = route_label(scope, self.fixed_paths)
            if self.metrics is not None:
                self.metrics.observe_request(route, record.model or "", status, code, total)
            self._log(scope, status, code, record, total)

    @staticmethod
    def _log(scope, status: int, code: str | None, record: RequestRecord, total: float) -> None:
        method = scope["method"]
        important = record.model is not None or method != "GET" or status >= 400
        level = logging.INFO if important else logging.DEBUG
        if not log.isEnabledFor(level):
            return
        client = scope.get("client")
        fields = {
            "method": method, "path": scope["path"], "status": status, "model": record.model,
            "queue_ms": round(record.queue_s * 1000, 2) if record.calls else None,
            "inference_ms": round(record.infer_s * 1000, 2) if record.calls else None,
            "total_ms": round(total * 1000, 2), "client": client[0] if client else None,
        }
        if code:
            fields["error"] = code
        if record.calls > 1:
            fields["calls"] = record.calls
        parts = [f"{method} {scope['path']} {status}"]
        if record.model:
            parts.append(f"model={record.model}")
        if record.calls:
            parts.append(f"queue={fields['queue_ms']}ms inference={fields['inference_ms']}ms")
            if record.calls > 1:
                parts.append(f"calls={record.calls}")
        parts.append(f"total={fields['total_ms']}ms")
        if code:
            parts.append(f"error={code}")
        log.log(level, " ".join(parts), extra={"fields": fields})


def error_code(chunks: list[bytes] | None, status: int) -> str:
    """The ``error.code`` of a JSON error answer; else the HTTP status as text."""
    if chunks:
        try:
            body = json.loads(b"".join(chunks))
            code = body["error"]["code"]
            if isinstance(code, str) and len(code) <= 64:
                return code
        except (ValueError, KeyError, TypeError):
            pass
    return str(status)
