"""POST /v1/chat/completions: the OpenAI chat API in front of every OCR model.

What is read from the request:

- ``model``: a catalog model id (default: the catalog's default model).
- ``messages``: the last ``user`` message that holds images is the request.
  Its ``image_url`` parts must be data URLs (``data:image/png;base64,...``;
  a PDF as ``data:application/pdf;base64,...`` works too). Remote
  ``http(s)://`` URLs are refused with a 400: the server never fetches
  URLs on a client's behalf. Several images are OCR'd in order and their
  texts joined with a blank line.
- The text parts of that message are the prompt. Classic engines have no
  use for a prompt, so it only picks the output format: a prompt that
  mentions "markdown" (e.g. DeepSeek-OCR's "Convert the document to
  markdown.") asks for ``format=markdown``, anything else for plain text.
  The extension field ``"format": "text" | "markdown"`` overrides that.
- ``stream: true`` answers ``chat.completion.chunk`` server-sent events (one
  content delta per image or PDF page), then ``data: [DONE]``;
  ``stream_options.include_usage`` adds the usage chunk. The first image is
  OCR'd before the stream starts, so a bad model or image still gets a plain
  HTTP error.
- Other OpenAI parameters (temperature, max_tokens, ...) are accepted and ignored.

``usage`` counts the answer's whitespace-separated words as completion tokens
(there is no tokenizer in front of a classic OCR engine); prompt tokens are 0.
Errors keep venvserve's ``{"error": {"code", "message"}}`` and add OpenAI's
``type`` and ``param``.
"""

import asyncio
import base64
import binascii
import json
import shutil
import time
import urllib.parse
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ...errors import BadRequest, ClientGone, PayloadTooLarge, VenvserveError
from ...gateway import Gateway
from .. import requestlog
from ..deps import gateway
from ..jsonbody import parse_object, read_limited
from ...uploads import spool_io

router = APIRouter(tags=["openai"])

BODY_OVERHEAD = 1 << 20  # JSON around the base64 images

EXAMPLE_REQUEST = {
    "model": "tesseract",
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Transcribe this page."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA..."}},
    ]}],
}
EXAMPLE_RESPONSE = {
    "id": "chatcmpl-6f1c0e6b9a2d4f7e8c3b5a1d2e4f6a8b", "object": "chat.completion", "created": 1767225600,
    "model": "tesseract",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello venvserve"},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 0, "completion_tokens": 2, "total_tokens": 2},
    "venvserve": {"format": "text", "pages": [{"image": 1, "page": 1, "text": "Hello venvserve"}],
                  "timing_ms": {"decode": 0.8, "ocr": 61.2, "total": 62.5}},
}
EXAMPLE_STREAM = (
    'data: {"id":"chatcmpl-6f1c","object":"chat.completion.chunk","created":1767225600,"model":"tesseract",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    'data: {"id":"chatcmpl-6f1c","object":"chat.completion.chunk","created":1767225600,"model":"tesseract",'
    '"choices":[{"index":0,"delta":{"content":"Hello venvserve"},"finish_reason":null}]}\n\n'
    'data: {"id":"chatcmpl-6f1c","object":"chat.completion.chunk","created":1767225600,"model":"tesseract",'
    '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
)

REQUEST_SCHEMA = {
    "type": "object", "required": ["messages"],
    "properties": {
        "model": {"type": "string", "description": "a catalog model id (default: the catalog's default)"},
        "messages": {"type": "array", "items": {"type": "object", "required": ["role", "content"], "properties": {
            "role": {"type": "string", "enum": ["system", "user", "assistant", "developer", "tool"]},
            "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object", "properties": {
                "type": {"type": "string", "enum": ["text", "image_url"]},
                "text": {"type": "string"},
                "image_url": {"type": "object", "properties": {"url": {"type": "string",
                              "description": "a data URL: data:image/png;base64,..."}}},
            }}}]},
        }}},
        "stream": {"type": "boolean", "default": False},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "format": {"type": "string", "enum": ["text", "markdown"],
                   "description": "venvserve extension; default: markdown when the prompt mentions it"},
    },
}

OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "invalid_request_error", 415: "invalid_request_error",
                429: "rate_limit_error"}


def openai_error(exc: VenvserveError) -> JSONResponse:
    error = exc.payload()["error"]
    error["type"] = OPENAI_TYPES.get(exc.status, "server_error" if exc.status >= 500 else "invalid_request_error")
    error["param"] = getattr(exc, "param", None)
    return JSONResponse({"error": error}, status_code=exc.status, headers=exc.headers)


def invalid(message: str, code: str = "invalid_request", param: str | None = None, hint: str | None = None):
    exc = BadRequest(message, code=code, hint=hint)
    exc.param = param
    return exc


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat completion: OCR of the images sent",
             description=__doc__.split("\n\n", 1)[1],
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": REQUEST_SCHEMA, "example": EXAMPLE_REQUEST}}}},
             responses={200: {"content": {"application/json": {"example": EXAMPLE_RESPONSE},
                                          "text/event-stream": {"example": EXAMPLE_STREAM}},
                              "description": "a chat.completion, or chat.completion.chunk events"},
                        400: {"content": {"application/json": {"example": {"error": {
                            "code": "remote_url_refused", "type": "invalid_request_error", "param": "messages",
                            "message": "image_url must be a data URL; this server does not fetch URLs"}}}},
                              "description": "invalid request"}})
async def chat_completions(request: Request, gw: Gateway = Depends(gateway)):
    work_dir = None
    try:
        settings = gw.settings
        limit = int(settings.max_upload_mb * 2**20)
        body = await read_json(request, limit * 4 // 3 + BODY_OVERHEAD, settings.max_json_depth)
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise invalid("`model` must be a string: a model id", param="model")
        model_id = gw.resolve_model(model or None)
        record = requestlog.current()
        if record is not None:
            record.model = model_id
        images, prompt = parse_messages(body.get("messages"))
        if len(images) > settings.max_images_per_request:
            raise invalid(f"{len(images)} images in one request; this server takes at most "
                          f"{settings.max_images_per_request}", code="too_many_images", param="messages",
                          hint="split the images over several requests, or raise --max-images-per-request")
        fmt = body.get("format") or ("markdown" if "markdown" in prompt.lower() else "text")
        if fmt not in ("text", "markdown"):
            raise invalid("format must be text or markdown", param="format")
        stream_options = body.get("stream_options") or {}
        if not isinstance(stream_options, dict):
            raise invalid("`stream_options` must be an object", param="stream_options")
        t0 = time.perf_counter()
        work_dir = gw.new_request_dir()
        paths = []
        for i, url in enumerate(images):
            paths.append(await decode_data_url(url, work_dir / f"image-{i}.upload", limit, i))
        decode_ms = (time.perf_counter() - t0) * 1000
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        async def ocr(i: int) -> dict:
            path, size = paths[i]
            return await gw.ocr(path, size, model_id, fmt, work_dir=work_dir, disconnected=request.is_disconnected)

        first = await ocr(0)
        if not body.get("stream"):
            results = [first] + [await ocr(i) for i in range(1, len(paths))]
            text = "\n\n".join(r["text"] for r in results)
            return completion(completion_id, created, model_id, fmt, text, results, decode_ms,
                              (time.perf_counter() - t0) * 1000)
        include_usage = bool(stream_options.get("include_usage"))
        stream = stream_chunks(gw, completion_id, created, model_id, first, ocr, len(paths), include_usage,
                               work_dir)
        work_dir = None  # the stream cleans up after itself
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    except VenvserveError as exc:
        return openai_error(exc)
    finally:
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)


def completion(cid, created, model_id, fmt, text, results, decode_ms, total_ms) -> dict:
    words = len(text.split())
    pages = [{"image": i + 1, "page": p["page"], "text": p["text"]}
             for i, r in enumerate(results) for p in r["pages"]]
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model_id,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 0, "completion_tokens": words, "total_tokens": words},
        "venvserve": {"format": fmt, "pages": pages,
                      "timing_ms": {"decode": round(decode_ms, 2),
                                    "ocr": round(sum(r["timing_ms"]["total"] for r in results), 2),
                                    "total": round(total_ms, 2)}},
    }


async def stream_chunks(gw, cid, created, model_id, first, ocr, count, include_usage, work_dir):
    def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
        payload = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_id,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    words = 0
    try:
        yield chunk({"role": "assistant", "content": ""})
        result = first
        for i in range(count):
            if i:
                try:
                    result = await ocr(i)
                except VenvserveError as exc:
                    error = openai_error(exc).body
                    yield b"data: " + error + b"\n\n"
                    return
            for n, page in enumerate(result["pages"]):
                text = page["text"] if (i == 0 and n == 0) else "\n\n" + page["text"]
                words += len(page["text"].split())
                yield chunk({"content": text})
        yield chunk({}, "stop")
        if include_usage:
            payload = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_id,
                       "choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": words,
                                                "total_tokens": words}}
            yield b"data: " + json.dumps(payload).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


async def read_json(request: Request, limit: int, max_depth: int) -> dict:
    if "json" not in request.headers.get("content-type", "application/json"):
        raise invalid("send the request as application/json", code="invalid_request")
    raw = await read_limited(request.receive, limit, scope=request.scope,
                             hint="send smaller images, or start the server with a larger --max-upload-mb")
    if raw is None:
        raise ClientGone("the client left while sending the request")
    return parse_object(raw, max_depth)


def parse_messages(messages) -> tuple[list[str], str]:
    """(image URLs, prompt text) of the last user message that holds images."""
    if not isinstance(messages, list) or not messages:
        raise invalid("`messages` must be a non-empty list", param="messages")
    for message in reversed(messages):
        if not isinstance(message, dict):
            raise invalid("each message must be an object with `role` and `content`", param="messages")
        if message.get("role") != "user" or not isinstance(message.get("content"), list):
            continue
        images, texts = [], []
        for part in message["content"]:
            if not isinstance(part, dict):
                raise invalid("each content part must be an object with a `type`", param="messages")
            if part.get("type") == "image_url":
                ref = part.get("image_url")
                url = ref.get("url") if isinstance(ref, dict) else ref
                if not isinstance(url, str) or not url:
                    raise invalid("an image_url part needs `image_url.url`", param="messages")
                images.append(url)
            elif part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
        if images:
            return images, "\n".join(texts)
    raise invalid("no image in the messages: send a user message with an `image_url` part holding a data URL",
                  code="no_image", param="messages",
                  hint='{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}')


async def decode_data_url(url: str, path, limit: int, index: int):
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("http", "https"):
        raise invalid(f"image {index + 1}: remote URLs are refused; this server does not fetch URLs on a "
                      "client's behalf", code="remote_url_refused", param="messages",
                      hint="send the image inline as a data URL: data:image/png;base64,...")
    if scheme != "data":
        raise invalid(f"image {index + 1}: image_url must be a data URL (data:image/png;base64,...)",
                      code="invalid_image_url", param="messages")
    header, sep, data = url[5:].partition(",")
    if not sep:
        raise invalid(f"image {index + 1}: a data URL needs a comma before its data",
                      code="invalid_image_url", param="messages")
    if len(data) > limit * 4 // 3 + 4:
        raise PayloadTooLarge(f"image {index + 1} is larger than this server's limit of {limit / 2**20:.0f} MB")

    def decode() -> bytes:
        if header.lower().endswith(";base64"):
            return base64.b64decode("".join(data.split()), validate=True)
        return urllib.parse.unquote_to_bytes(data)

    try:
        raw = await asyncio.to_thread(decode) if len(data) > 256 * 1024 else decode()
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"image {index + 1}: the data URL is not valid base64: {exc}",
                      code="invalid_image_url", param="messages") from None
    if len(raw) > limit:
        raise PayloadTooLarge(f"image {index + 1} is larger than this server's limit of {limit / 2**20:.0f} MB")
    if len(raw) > 256 * 1024:
        await asyncio.to_thread(spool_io, path.write_bytes, raw)
    else:
        spool_io(path.write_bytes, raw)
    return path, len(raw)
