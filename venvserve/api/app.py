"""The FastAPI application factory.

Middleware, outermost first (all pure ASGI: no BaseHTTPMiddleware on the hot path):
``ObserveMiddleware`` (metrics and the access log) → ``HostOriginMiddleware``
(DNS rebinding, cross-site writes) → ``AuthMiddleware`` (only when an API or
admin key is set) → ``InferFastPath`` (the ``/infer`` relay) → the routes.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..gateway import Gateway
from ..settings import Settings
from . import errors
from .auth import AuthMiddleware, is_admin_route
from .fastpath import InferFastPath
from .metrics import Metrics
from .metrics import router as metrics_router
from .origin import HostOriginMiddleware, HostPolicy
from .requestlog import ObserveMiddleware
from .routes import envlog, envs, jobs, logs, models, ocr, openai, status, ui

DESCRIPTION = """Many models, each in its own Python environment, behind one HTTP API.

The web page is at [`/`](/). Errors are always `{"error": {"code": ..., "message": ...[, "hint": ...]}}`.
Requests must name this server in `Host` (its address, `localhost`, or an `--allowed-hosts` entry), and
a browser's cross-site `POST`/`PUT`/`PATCH`/`DELETE` is refused unless its origin is in `--allowed-origins`.
When the server runs with `--api-key`, every `/v1/*` route and `/metrics` need `Authorization: Bearer <key>`;
with `--admin-key`, building and removing envs and loading and unloading models need the admin key.
"""


def create_app(settings: Settings | None = None, gw: Gateway | None = None) -> FastAPI:
    gw = gw or Gateway(settings or Settings.load())
    settings = gw.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(title="venvserve", version=__version__, lifespan=lifespan, description=DESCRIPTION)
    app.state.gateway = gw
    app.state.metrics = Metrics(gw)
    errors.install(app)
    routers = [ocr, openai, logs, models, envs, envlog, status, ui]  # logs before models' catch-all GET
    for module in routers:
        app.include_router(module.router)
    app.include_router(metrics_router)
    jobs.install(app)
    app.mount("/ui", ui.static_files(), name="ui")
    app.add_middleware(InferFastPath, gw=gw)  # innermost: auth and observation stay outside it
    if settings.api_key or settings.admin_key:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key, admin_key=settings.admin_key)
        _document_auth(app, bool(settings.api_key))
    policy = HostPolicy(settings.host, settings.allowed_hosts, settings.allowed_origins)
    app.add_middleware(HostOriginMiddleware, policy=policy)
    fixed = [r.path for r in app.routes if "{" not in getattr(r, "path", "{")]
    app.add_middleware(ObserveMiddleware, metrics=app.state.metrics, fixed_paths=fixed)
    return app


def _document_auth(app: FastAPI, api_key: bool) -> None:
    """Give /docs an Authorize button and mark the routes that need a key."""
    plain_openapi = app.openapi

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = plain_openapi()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "the server's --api-key (or --admin-key for admin routes)"}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                admin = is_admin_route(method.upper(), path)
                if admin or (api_key and (path.startswith("/v1/") or path == "/metrics")):
                    operation["security"] = [{"bearer": []}]
                    if admin:
                        operation["description"] = (operation.get("description") or "") + \
                            "\n\nNeeds the admin key when the server has one."
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
