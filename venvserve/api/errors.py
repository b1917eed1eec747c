"""Every error leaves the gateway as ``{"error": {"code", "message"[, "hint"]}}``."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import VenvserveError

log = logging.getLogger("venvserve.api")


def error_response(status: int, code: str, message: str, hint: str | None = None, headers=None) -> JSONResponse:
    error = {"code": code, "message": message}
    if hint:
        error["hint"] = hint
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(VenvserveError)
    async def venvserve_error(request: Request, exc: VenvserveError):
        return JSONResponse(exc.payload(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(400, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}",
                              hint="this is a bug in venvserve; the server log has the traceback")
