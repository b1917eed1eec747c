"""Every error leaves the gateway as ``{"error": {"code", "message"[, "hint"]}}`` (``errors.error_body``).

An unexpected exception is a bug: its traceback goes to the server log under
the request's id, and the client gets a generic message carrying that id,
never the exception's text (it may hold server paths).
"""

import logging

from fastapi import FastAPI, Request

from ..httperrors import error_response, install_common
from .requestlog import printable, request_id

log = logging.getLogger("venvserve.api")


def install(app: FastAPI) -> None:
    install_common(app)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        rid = request_id(request.scope)
        log.error("unexpected error on %s %s (request %s)", request.method, printable(request.url.path), rid,
                  exc_info=exc)
        return error_response(500, "internal_error", f"the server failed on this request (request id {rid})",
                              hint="this is a bug in venvserve; the server log has the details under that id")
