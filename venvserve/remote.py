"""A running venvserve server, seen from the CLI: probe it, OCR through it.

Stdlib only (urllib): the CLI makes one request per file, so a connection
pool would buy nothing, and the gateway's main env stays free of httpx.
HTTP and network failures are translated here into the one exception tree
(``VenvserveError``), carrying the server's own code and hint.
"""

import json
import mimetypes
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from .errors import VenvserveError

DEFAULT_TIMEOUT_S = 600.0


class RemoteServer:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def healthy(self, timeout: float = 0.3) -> bool:
        """True when a venvserve server answers ``/healthz`` with status ok."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=timeout) as answer:
                return json.loads(answer.read()).get("status") == "ok"
        except (OSError, ValueError, AttributeError):
            return False

    def ocr(self, path: Path, model: str | None, fmt: str) -> dict:
        fields = {"format": fmt}
        if model:
            fields["model"] = model
        body, content_type = _multipart(fields, path)
        request = urllib.request.Request(self.url + "/v1/ocr", data=body, method="POST",
                                         headers={"Content-Type": content_type, **self._auth()})
        return self._send(request)

    def get(self, path: str) -> dict:
        return self._send(urllib.request.Request(self.url + path, headers=self._auth()))

    def post(self, path: str) -> dict:
        return self._send(urllib.request.Request(self.url + path, data=b"", method="POST", headers=self._auth()))

    def stream(self, path: str):
        """An open response to read line by line (server-sent events); errors as for the other calls."""
        request = urllib.request.Request(self.url + path, headers={"Accept": "text/event-stream", **self._auth()})
        return self._send(request, parse=False)

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _send(self, request: urllib.request.Request, parse: bool = True):
        try:
            if not parse:
                return urllib.request.urlopen(request, timeout=self.timeout)
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise VenvserveError(f"cannot reach the server at {self.url}: {reason}", code="server_unreachable",
                                 hint="start one with `venvserve serve`, or leave out --server to run "
                                      "the model in this process") from None


def _http_error(exc: urllib.error.HTTPError) -> VenvserveError:
    raw = exc.read()
    try:
        error = json.loads(raw)["error"]
        return VenvserveError(error["message"], code=error.get("code"), hint=error.get("hint"), status=exc.code)
    except (ValueError, KeyError, TypeError):
        text = raw.decode("utf-8", "replace").strip()[:200]
        return VenvserveError(f"the server answered HTTP {exc.code}: {text or exc.reason}",
                              code="http_error", status=exc.code)


def _multipart(fields: dict[str, str], path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    filename = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: {kind}\r\n\r\n".encode())
    parts.append(path.read_bytes())
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
