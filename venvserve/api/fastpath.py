"""A pure-ASGI fast path for the hottest route, ``POST /v1/models/{id}/infer``.

FastAPI's routing, dependency and validation layers cost ~150 us per request
here, several times the forwarding itself (docs/performance.md). This
middleware serves the ordinary case -- a JSON object body with a JSON (or no)
content type -- by calling the very function the route calls, and answers
with the same JSONResponse. Anything else (bad JSON, not an object, another
content type) is replayed, byte for byte, to the FastAPI route, so error
answers stay exactly the route's. It sits inside ObserveMiddleware and
AuthMiddleware: metrics, the access log and keys apply as before.
"""

import json

from fastapi.responses import JSONResponse
from starlette.requests import Request

from ..errors import VenvserveError
from .routes import models

PATH = "/v1/models/{model_id:path}/infer"


class InferFastPath:
    def __init__(self, app, gw):
        self.app = app
        self.gw = gw
        self.route = next(r for r in models.router.routes
                          if getattr(r, "path", None) == PATH and "POST" in r.methods)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return await self.app(scope, receive, send)
        match = self.route.path_regex.match(scope["path"])
        if match is None or not _json_or_none(scope["headers"]):
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left while sending
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return await self.app(scope, _replay(raw, receive), send)
        scope["route"] = self.route  # for the metrics' route label, as the router would set it
        request = Request(scope, receive)
        try:
            answer = JSONResponse(await models.run_infer(self.gw, match["model_id"], body, request.is_disconnected))
        except VenvserveError as exc:  # as errors.install's handler answers it
            answer = JSONResponse(exc.payload(), status_code=exc.status, headers=exc.headers)
        await answer(scope, receive, send)


def _json_or_none(headers) -> bool:
    for name, value in headers:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    return True


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
