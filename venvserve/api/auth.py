"""Bearer-key auth as a pure ASGI middleware, installed only when a key is set.

- ``api_key``: every ``/v1/*`` route and ``/metrics`` need ``Authorization:
  Bearer <key>``; ``/``, ``/ui/*``, ``/healthz``, ``/docs``, ``/redoc`` and
  ``/openapi.json`` stay open. The admin key is accepted there too.
- ``admin_key``: the admin routes (``POST``/``DELETE /v1/envs/...``,
  ``POST /v1/models/{id}/load`` and ``/unload``, ``GET /v1/models/{id}/logs``:
  worker output may show paths and secrets) need it: no or an unknown
  key is 401, the plain API key is 403.

Keys are compared with :func:`hmac.compare_digest`. With no key set the
middleware is not installed at all, so an open server pays nothing for it.
"""

import hmac
import json

from ..errors import error_body

PROTECTED_PREFIX = "/v1/"
PROTECTED_EXACT = ("/metrics",)


def is_admin_route(method: str, path: str) -> bool:
    if method in ("POST", "DELETE") and path.startswith("/v1/envs/"):
        return True
    # Model ids may contain "/": the route is decided by the last segment, as the router does.
    if not path.startswith("/v1/models/"):
        return False
    return ((method == "POST" and path.endswith(("/load", "/unload")))
            or (method == "GET" and path.endswith("/logs")))


def _error(status: int, code: str, message: str, hint: str) -> bytes:
    return json.dumps(error_body(code, message, hint)).encode()


class AuthMiddleware:
    def __init__(self, app, api_key: str | None = None, admin_key: str | None = None):
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.admin_key = admin_key.encode() if admin_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if not (path.startswith(PROTECTED_PREFIX) or path in PROTECTED_EXACT):
            return await self.app(scope, receive, send)
        admin = self.admin_key is not None and is_admin_route(scope["method"], path)
        if not admin and self.api_key is None:
            return await self.app(scope, receive, send)
        token = bearer_token(scope)
        if admin:
            if token is not None and hmac.compare_digest(token, self.admin_key):
                return await self.app(scope, receive, send)
            if token is not None and self.api_key is not None and hmac.compare_digest(token, self.api_key):
                return await self._deny(send, 403, "forbidden", "this route needs the admin key",
                                        "send `Authorization: Bearer <admin key>` (the server's --admin-key)")
            return await self._deny(send, 401, "unauthorized", "this route needs the admin key",
                                    "send `Authorization: Bearer <admin key>` (the server's --admin-key)")
        if token is not None and (hmac.compare_digest(token, self.api_key)
                                  or (self.admin_key is not None and hmac.compare_digest(token, self.admin_key))):
            return await self.app(scope, receive, send)
        what = "a missing" if token is None else "an invalid"
        return await self._deny(send, 401, "unauthorized", f"{what} API key",
                                "send `Authorization: Bearer <key>` (the server's --api-key / VENVSERVE_API_KEY)")

    @staticmethod
    async def _deny(send, status: int, code: str, message: str, hint: str) -> None:
        body = _error(status, code, message, hint)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="venvserve"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def bearer_token(scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            return None
    return None
