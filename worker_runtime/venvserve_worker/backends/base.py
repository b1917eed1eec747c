"""The seam between the worker runtime and one inference engine.

A backend is any class with this shape; the runtime creates it with no
arguments, calls ``load(options)`` once before it reports ready, then calls
``infer(request)`` for every request (from one thread at a time unless the
model's ``max_concurrency`` is above 1).

Request shapes for ``task == "ocr"``::

    {"task": "ocr", "images": ["/spool/abc.png", ...], "format": "text"|"markdown",
     "options": {...}}

``images`` are paths of files the gateway wrote (never client-supplied);
each is one page. The answer is::

    {"pages": [{"page": 1, "text": "..."}, ...]}

Any other JSON object (``/v1/models/{id}/infer``) is handed over as it is
and the backend answers a JSON-serialisable dict.

A backend signals a bad request by raising ``BackendError(code, message,
status)``; any other exception becomes a 500 ``backend_error`` and the
worker keeps serving.

``load`` signals a permanent failure it can state plainly (a bad catalog
option, weights not found) by raising ``LoadError``: the worker exits with
``EXIT_BOOT_ERROR`` and that message as its last line.
"""

from typing import Any, Dict, Protocol


class BackendError(Exception):
    """An error the client caused or can act on; carries its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class LoadError(Exception):
    """The model cannot load, for a reason the message states in full (no traceback needed)."""


class OptionError(LoadError, ValueError):
    """A catalog option has a value the backend cannot use."""


class Backend(Protocol):
    def load(self, options: Dict[str, Any]) -> None:
        """Load the model. Raise to signal that the worker cannot boot."""

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """Run one request; answer a JSON-serialisable dict."""
