"""Stream a multipart upload straight into one spool file, within limits.

Starlette's form parser buffers a file in a SpooledTemporaryFile; handing
that to a worker by path would mean writing it a second time. Here the
bytes go from the socket to the spool file once, and the small text fields
are kept in memory.

Every size is bounded while the bytes arrive, never after: the whole body
(file and fields together), the number of file parts and of fields, one
field's size, and each part's headers. A body that breaks the multipart
grammar is a 400, a full disk a 507; nothing a client sends gets past this
module as anything but a JSON error.
"""

import asyncio
import errno
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .errors import BadRequest, InsufficientStorage, PayloadTooLarge, VenvserveError

# A refused upload's unread rest is read and dropped, up to these bounds, before the answer goes:
# closing a socket with unread bytes makes the kernel reset it, and the client then never reads
# the JSON error but "connection reset" (seen with a 1 MB upload refused mid-way).
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_S = 5.0
PART_HEADER_BYTES = 8 * 1024  # one part's headers, all together
PART_HEADERS = 8  # headers in one part


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 50 * 2**20  # the whole body
    max_files: int = 16
    max_fields: int = 32
    max_field_bytes: int = 64 * 1024

    @classmethod
    def from_settings(cls, settings) -> "UploadLimits":
        return cls(int(settings.max_upload_mb * 2**20), settings.max_files, settings.max_form_fields,
                   settings.max_field_kb * 1024)


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str | None = None
    size: int = 0


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n // 1024} KB"


class UploadParser:
    """Feed it the body's chunks, then ``finish()``; the first ``file_field`` file is spooled."""

    def __init__(self, boundary: bytes, spool: Path, limits: UploadLimits, file_field: str = "file",
                 opener=open):
        self.spool, self.limits, self.file_field, self.opener = spool, limits, file_field, opener
        self.upload = Upload()
        self.received = 0
        self.files = 0
        self.out = None
        self.part: dict = {}
        self.parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end}, max_header_count=PART_HEADERS, max_header_size=PART_HEADER_BYTES)

    # -- feeding -------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.limits.max_bytes:
            what = "file" if self.part.get("file") else "request"
            raise PayloadTooLarge(f"the {what} is larger than this server's limit of {_mb(self.limits.max_bytes)}",
                                  code=f"{what}_too_large",
                                  hint="send a smaller file, or start the server with a larger --max-upload-mb")
        try:
            self.parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(f"the multipart body is malformed: {_short(exc)}", code="invalid_multipart") from None

    def finish(self) -> Upload:
        try:
            self.parser.finalize()
        except MultipartParseError as exc:
            raise BadRequest(f"the multipart body is malformed: {_short(exc)}", code="invalid_multipart") from None
        if self.out is not None:  # the body ended inside the file part
            raise BadRequest("the multipart body ended before the file did", code="invalid_multipart")
        if self.upload.path is None:
            raise BadRequest(f"no file in the request: send it as the multipart field `{self.file_field}`",
                             code="missing_file", hint="curl -F file=@page.png http://HOST/v1/ocr")
        return self.upload

    def abort(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        discard(self.upload)

    # -- parser callbacks ------------------------------------------------------

    def _part_begin(self):
        self.part = {"headers": {}, "hname": bytearray(), "hvalue": bytearray(), "hsize": 0,
                     "name": None, "data": bytearray(), "file": False}

    def _grow(self, buf: bytearray, data, start: int, end: int) -> None:
        # A header's name and value may arrive in several pieces (network chunks): join them.
        self.part["hsize"] += end - start
        if self.part["hsize"] > PART_HEADER_BYTES:
            raise BadRequest(f"a multipart part's headers are over {PART_HEADER_BYTES // 1024} KB",
                             code="invalid_multipart")
        buf += data[start:end]

    def _header_field(self, data, start, end):
        self._grow(self.part["hname"], data, start, end)

    def _header_value(self, data, start, end):
        self._grow(self.part["hvalue"], data, start, end)

    def _header_end(self):
        name = self.part["hname"].decode("latin-1").strip().lower()
        self.part["headers"][name] = bytes(self.part["hvalue"])  # bytes: parsed as latin-1, always decodable
        self.part["hname"], self.part["hvalue"] = bytearray(), bytearray()

    def _headers_finished(self):
        _, disp = parse_options_header(self.part["headers"].get("content-disposition", b""))
        self.part["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in disp:
            if len(self.upload.fields) >= self.limits.max_fields:
                raise BadRequest(f"more than {self.limits.max_fields} form fields", code="too_many_fields")
            return
        self.files += 1
        if self.files > self.limits.max_files:
            raise BadRequest(f"more than {self.limits.max_files} files in one request", code="too_many_files")
        if self.part["name"] == self.file_field and self.upload.path is None:
            self.upload.filename = disp[b"filename"].decode("utf-8", "replace")
            self.upload.path = self.spool / f"{uuid.uuid4().hex}.upload"
            self.out = self._io(self.opener, self.upload.path, "wb")
            self.part["file"] = True

    def _part_data(self, data, start, end):
        if self.part["file"]:
            self.upload.size += end - start
            self._io(self.out.write, memoryview(data)[start:end])  # no copy on its way to the file
        elif self.part["name"] is not None:
            self.part["data"] += data[start:end]
            if len(self.part["data"]) > self.limits.max_field_bytes:
                raise PayloadTooLarge(f"form field {self.part['name'][:64]!r} is over "
                                      f"{_mb(self.limits.max_field_bytes)}", code="field_too_large")

    def _part_end(self):
        if self.part.get("file"):
            self._io(self.out.close)
            self.out = None
        elif self.part.get("name"):
            self.upload.fields[self.part["name"]] = self.part["data"].decode("utf-8", "replace")

    @staticmethod
    def _io(call, *args):
        return spool_io(call, *args)


def spool_io(call, *args):
    """``call(*args)`` on a spool file: a full disk is the client's 507, not a 500."""
    try:
        return call(*args)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage("the server's disk is full; the upload could not be stored",
                                      code="disk_full", hint="try again later") from None
        raise


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def boundary_of(content_type: str) -> bytes:
    ctype, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise BadRequest("send the file as multipart/form-data with a field named `file`",
                         code="invalid_request", hint="curl -F file=@page.png http://HOST/v1/ocr")
    return boundary


async def receive_upload(request: Request, spool: Path, limits: UploadLimits | int,
                         file_field: str = "file", parser_class: type = None) -> Upload:
    """The request's multipart body, files spooled; ``parser_class`` may be a subclass of UploadParser."""
    if isinstance(limits, int):  # a plain byte limit for the whole body
        limits = UploadLimits(max_bytes=limits)
    parser = (parser_class or UploadParser)(boundary_of(request.headers.get("content-type", "")), spool, limits,
                                            file_field)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        if int(declared) <= DRAIN_BYTES:
            await drain(request.stream())
        raise PayloadTooLarge(f"the request is larger than this server's limit of {_mb(limits.max_bytes)}",
                              code="file_too_large",
                              hint="send a smaller file, or start the server with a larger --max-upload-mb")
    stream = request.stream()
    try:
        async for chunk in stream:
            parser.feed(chunk)
        return parser.finish()
    except VenvserveError:
        parser.abort()
        await drain(stream)
        raise
    except BaseException:
        parser.abort()
        raise


async def drain(stream) -> None:
    """Read and drop what is left of a refused body, within DRAIN_BYTES and DRAIN_S."""
    deadline, left = time.monotonic() + DRAIN_S, DRAIN_BYTES

    async def rest():
        nonlocal left
        async for chunk in stream:
            left -= len(chunk)
            if left <= 0 or time.monotonic() > deadline:
                return

    try:
        await asyncio.wait_for(rest(), DRAIN_S)
    except Exception:  # timed out, a client gone, a stream already read: nothing (more) to drop
        pass


def discard(upload: Upload) -> None:
    if upload.path:
        try:
            os.unlink(upload.path)
        except FileNotFoundError:
            pass
