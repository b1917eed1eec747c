"""The ingress's errors: the gateway's JSON shape (``venvserve.errors.error_body``), and Ray's failures
translated into the gateway's error tree."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import TooManyRequests, Unavailable, VenvserveError, WorkerCrashed, error_body

log = logging.getLogger("venvserve.ray")


def install(app: FastAPI) -> None:
    @app.exception_handler(VenvserveError)
    async def venvserve_error(request: Request, exc: VenvserveError):
        return JSONResponse(exc.payload(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(error_body("invalid_request", f"{where}: {first.get('msg', 'invalid request')}"),
                            status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", type(exc).__name__,
                                       "this is a bug in venvserve; the ingress log has the traceback"),
                            status_code=500)


def translate(exc: BaseException, model_id: str) -> VenvserveError:
    """Ray and Serve failures → the gateway's error tree."""
    from ray import exceptions as rex
    from ray.serve import exceptions as sex

    if isinstance(exc, sex.BackPressureError):
        return TooManyRequests(f"model {model_id!r} has too many queued requests; retry shortly",
                               headers={"Retry-After": "1"})
    if isinstance(exc, sex.DeploymentUnavailableError):
        return Unavailable(f"model {model_id!r} has no replica that can take requests",
                           code="model_unavailable")
    if isinstance(exc, (rex.RayActorError, rex.ActorUnavailableError)):
        return WorkerCrashed(f"the replica of {model_id!r} died while holding the request",
                             hint="Serve restarts the replica; the request can be retried")
    if isinstance(exc, rex.RuntimeEnvSetupError):
        return Unavailable(f"the env of {model_id!r} cannot be set up on its node", code="model_failed")
    log.error("model %r: %s: %s", model_id, type(exc).__name__, exc)
    return VenvserveError(f"model {model_id!r} failed: {type(exc).__name__}", code="backend_error", status=500)
