"""``POST /v1/models/{id}/infer`` as a pure-ASGI relay: the body's bytes in, the worker's bytes out.

FastAPI's routing, dependency and validation layers cost ~150 us per request
here, and parsing a body only to serialise it again costs more than the
forwarding itself for large bodies (docs/performance.md). This middleware
serves every ``POST .../infer``: it reads the body within ``max_json_mb``,
checks what the gateway must check without parsing it (a JSON object, its
nesting depth, no ``images`` key the gateway alone may set), hands the bytes
to ``supervisor.infer_raw`` and answers the worker's bytes unchanged. The
worker parses the body once and answers bad JSON with its own 400.

It sits inside the auth, host and observation middleware, and finds its
route with its own pattern: nothing here depends on the router's tables.
"""

import json
import re

from starlette.requests import Request

from ..errors import BadRequest, VenvserveError
from ..ocr.options import RESERVED_KEYS, check_reserved
from . import requestlog
from .jsonbody import check_depth, parse_object, read_limited, starts_an_object

PATH = re.compile(r"^/v1/models/(?P<model_id>.+)/infer$")
ROUTE = "/v1/models/{model_id:path}/infer"  # the metrics' route label, as the router names it
JSON_HEADERS = [(b"content-type", b"application/json")]


class _Route:  # what ObserveMiddleware reads from scope["route"]
    path = ROUTE


class InferFastPath:
    def __init__(self, app, gw):
        self.app = app
        self.gw = gw
        self.limit = int(gw.settings.max_json_mb * 2**20)
        self.max_depth = gw.settings.max_json_depth

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return await self.app(scope, receive, send)
        match = PATH.match(scope["path"])
        if match is None:
            return await self.app(scope, receive, send)
        scope["route"] = _Route
        try:
            status, body = await self.relay(scope, receive, match["model_id"])
        except VenvserveError as exc:
            status, body = exc.status, json.dumps(exc.payload()).encode()
            headers = [(k.lower().encode(), str(v).encode()) for k, v in exc.headers.items()]
            return await _answer(send, status, body, headers + _close_if_unread(exc))
        if status is not None:
            await _answer(send, status, body)

    async def relay(self, scope, receive, model_id: str) -> tuple[int | None, bytes]:
        if not _json_or_none(scope["headers"]):
            raise BadRequest("send the body as application/json", code="invalid_request",
                             hint="curl -H 'Content-Type: application/json' -d '{...}'")
        raw = await read_limited(receive, self.limit, scope=scope)
        if raw is None:  # the client left while sending
            return None, b""
        model_id = self.gw.resolve_model(model_id)
        record = requestlog.current()
        if record is not None:
            record.model = model_id
        if not starts_an_object(raw):
            raise BadRequest("the body must be a JSON object", code="invalid_json")
        check_depth(raw, self.max_depth)
        # b"\\" first: a one-byte search runs at memchr speed, where b"\\u" costs ms per MB.
        if any(f'"{key}"'.encode() in raw for key in RESERVED_KEYS) or (b"\\" in raw and b"\\u" in raw):
            check_reserved(parse_object(raw, self.max_depth))  # a key may hide behind \u escapes
        return await self.gw.supervisor.infer_raw(model_id, raw, disconnected=_disconnect_probe(scope, receive))


def _close_if_unread(exc: VenvserveError) -> list:
    # A body refused before it was read to the end: the connection cannot carry another request.
    return [(b"connection", b"close")] if exc.status == 413 else []


async def _answer(send, status: int, body: bytes, headers=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _json_or_none(headers) -> bool:
    for name, value in headers:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    return True


def _disconnect_probe(scope, receive):
    """``disconnected()`` for the supervisor: true once the client has gone (the body is read by then)."""
    return Request(scope, receive).is_disconnected
