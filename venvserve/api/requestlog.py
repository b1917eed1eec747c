"""One record per HTTP request: metrics and the access log, in one pure ASGI middleware.

The middleware puts a small mutable :class:`RequestRecord` in a context
variable; whatever serves the request below it (the supervisor's calls, a
route) notes the model, the time spent queued for a worker and the time spent
on it. When the response is done, the record becomes one access-log line on
the ``venvserve.access`` logger and a few Prometheus observations.

Log levels: a request that used a model, changed something (not a GET) or
failed is logged at INFO; the rest (status polls, static files, /metrics,
/healthz) at DEBUG, so a page that polls does not flood the log. With
``--log-format json`` every line carries ``id, method, path, status, model,
env_build_ms, load_ms, queue_ms, inference_ms, total_ms, client`` as fields
(the same names as a response's ``timing_ms``). Whatever a client chose (the
path) has its control characters escaped: a ``%0a`` cannot forge a line.
"""

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar

log = logging.getLogger("venvserve.access")

ERROR_BODY_LIMIT = 16 * 1024  # an error answer's body is read for its code up to this size


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SCOPE_KEY = "venvserve.request_id"


def printable(text: str) -> str:
    """``text`` with control characters as ``\\xNN`` escapes, safe in a one-line log record."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def request_id(scope) -> str:
    rid = scope.get(SCOPE_KEY)
    if rid is None:
        rid = scope[SCOPE_KEY] = uuid.uuid4().hex[:16]
    return rid


class RequestRecord:
    __slots__ = ("model", "env_build_s", "load_s", "queue_s", "infer_s", "calls")

    def __init__(self):
        self.model: str | None = None
        self.env_build_s = 0.0
        self.load_s = 0.0
        self.queue_s = 0.0
        self.infer_s = 0.0
        self.calls = 0

    def note(self, model: str | None = None, queue_s: float = 0.0, infer_s: float = 0.0,
             env_build_s: float = 0.0, load_s: float = 0.0) -> None:
        """Add one worker call (a page, an image) of this request; times are summed."""
        if model:
            self.model = model
        self.env_build_s += env_build_s
        self.load_s += load_s
        self.queue_s += queue_s
        self.infer_s += infer_s
        self.calls += 1

    def timing_ms(self) -> dict:
        """What the supervisor reported, by the names of ``timing_ms`` (only the parts that happened)."""
        parts = {"env_build": self.env_build_s, "load": self.load_s}
        out = {name: round(s * 1000, 2) for name, s in parts.items() if s}
        if self.calls:
            out["queue"] = round(self.queue_s * 1000, 2)
        return out


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
        rid = request_id(scope)
        token = CURRENT.set(record)
        started = time.perf_counter()
        status = 499  # no answer at all: the client left before there was one
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
                self.metrics.observe_request(route, record.model or "none", status, code, total)
            self._log(scope, rid, status, code, record, total)

    @staticmethod
    def _log(scope, rid: str, status: int, code: str | None, record: RequestRecord, total: float) -> None:
        method = scope["method"]
        important = record.model is not None or method != "GET" or status >= 400
        level = logging.INFO if important else logging.DEBUG
        if not log.isEnabledFor(level):
            return
        client = scope.get("client")
        path = printable(scope["path"])
        fields = {
            "id": rid, "method": method, "path": path, "status": status, "model": record.model,
            "env_build_ms": round(record.env_build_s * 1000, 2) if record.env_build_s else None,
            "load_ms": round(record.load_s * 1000, 2) if record.load_s else None,
            "queue_ms": round(record.queue_s * 1000, 2) if record.calls else None,
            "inference_ms": round(record.infer_s * 1000, 2) if record.calls else None,
            "total_ms": round(total * 1000, 2), "client": client[0] if client else None,
        }
        if code:
            fields["error"] = code
        if record.calls > 1:
            fields["calls"] = record.calls
        parts = [f"{method} {path} {status}"]
        if record.model:
            parts.append(f"model={printable(record.model)}")
        for name in ("env_build", "load"):
            if fields[f"{name}_ms"] is not None:
                parts.append(f"{name}={fields[name + '_ms']}ms")
        if record.calls:
            parts.append(f"queue={fields['queue_ms']}ms inference={fields['inference_ms']}ms")
            if record.calls > 1:
                parts.append(f"calls={record.calls}")
        parts.append(f"total={fields['total_ms']}ms")
        if code:
            parts.append(f"error={printable(code)}")
        parts.append(f"id={rid}")
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
