"""The ingress's errors: the gateway's JSON shape (``venvserve.errors.error_body``), and Ray's failures
translated into the gateway's error tree."""

import logging

from fastapi import FastAPI, Request

from ..errors import TooManyRequests, Unavailable, VenvserveError, WorkerCrashed
from ..httperrors import error_response, install_common

log = logging.getLogger("venvserve.ray")


def install(app: FastAPI) -> None:
    install_common(app)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", type(exc).__name__,
                              "this is a bug in venvserve; the ingress log has the traceback")


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
