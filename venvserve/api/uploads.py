"""Stream a multipart upload straight into one spool file.

Starlette's form parser buffers a file in a SpooledTemporaryFile; handing
that to a worker by path would mean writing it a second time. Here the
bytes go from the socket to the spool file once, the size limit is enforced
while they arrive, and the small text fields are kept in memory.
"""

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ..errors import BadRequest, PayloadTooLarge

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str | None = None
    size: int = 0


async def receive_upload(request: Request, spool: Path, max_bytes: int, file_field: str = "file") -> Upload:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise BadRequest("send the file as multipart/form-data with a field named `file`",
                         code="invalid_request", hint="curl -F file=@page.png http://HOST/v1/ocr")
    upload = Upload()
    part: dict = {}
    out = None

    def on_part_begin():
        part.clear()
        part.update(headers={}, name=None, data=bytearray(), file=False)

    def on_header_field(data, start, end):
        part["hname"] = data[start:end].decode("latin-1").lower()

    def on_header_value(data, start, end):
        part["headers"][part["hname"]] = part["headers"].get(part["hname"], "") + data[start:end].decode("utf-8", "replace")

    def on_headers_finished():
        nonlocal out
        _, disp = parse_options_header(part["headers"].get("content-disposition", ""))
        part["name"] = disp.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disp and part["name"] == file_field and upload.path is None:
            upload.filename = disp[b"filename"].decode("utf-8", "replace")
            upload.path = spool / f"{uuid.uuid4().hex}.upload"
            out = open(upload.path, "wb")
            part["file"] = True

    def on_part_data(data, start, end):
        if part["file"]:
            upload.size += end - start
            if upload.size > max_bytes:
                raise PayloadTooLarge(f"the file is larger than this server's limit of {max_bytes / 2**20:.0f} MB",
                                      hint="send a smaller file, or start the server with a larger --max-upload-mb")
            out.write(memoryview(data)[start:end])  # no copy of the chunk on its way to the file
        elif part["name"] is not None:
            part["data"] += data[start:end]
            if len(part["data"]) > MAX_FIELD_BYTES:
                raise BadRequest(f"form field {part['name']!r} is too long", code="invalid_request")

    def on_part_end():
        nonlocal out
        if part["file"]:
            out.close()
            out = None
        elif part["name"]:
            upload.fields[part["name"]] = part["data"].decode("utf-8", "replace")

    parser = MultipartParser(params[b"boundary"], callbacks={
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except BaseException:
        if out:
            out.close()
        discard(upload)
        raise
    if out:  # the body ended inside the file part
        out.close()
        discard(upload)
        raise BadRequest("the multipart body ended before the file did", code="invalid_request")
    if upload.path is None:
        raise BadRequest(f"no file in the request: send it as the multipart field `{file_field}`",
                         code="missing_file", hint="curl -F file=@page.png http://HOST/v1/ocr")
    return upload


def discard(upload: Upload) -> None:
    if upload.path:
        try:
            os.unlink(upload.path)
        except FileNotFoundError:
            pass
