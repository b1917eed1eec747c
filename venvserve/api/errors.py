"""Every error leaves the gateway as ``{"error": {"code", "message"[, "hint"]}}`` (``errors.error_body``).

An unexpected exception is a bug: its traceback goes to the server log under
the request's id, and the client gets a generic message carrying that id,
never the exception's text (it may hold server paths).
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import VenvserveError, error_body
from .requestlog import printable, request_id

log = logging.getLogger("venvserve.api")


def error_response(status: int, code: str, message: str, hint: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse(error_body(code, message, hint), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(VenvserveError)
    async def venvserve_error(request: Request, exc: VenvserveError):
        return JSONResponse(exc.payload(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(400, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}"[:300])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        rid = request_id(request.scope)
        log.error("unexpected error on %s %s (request %s)", request.method, printable(request.url.path), rid,
                  exc_info=exc)
        return error_response(500, "internal_error", f"the server failed on this request (request id {rid})",
                              hint="this is a bug in venvserve; the server log has the details under that id")
