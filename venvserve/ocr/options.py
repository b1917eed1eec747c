"""What a client may ask of the OCR pipeline: the answer's format and the backend's options."""

import json

from ..errors import BadRequest

FORMATS = ("text", "markdown")
# Request keys the server fills in itself: a client never names a server-side file.
RESERVED_KEYS = ("images",)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", code="invalid_format")
    return fmt


def parse_options(raw: str | None) -> dict:
    """The multipart `options` field: a JSON object for the backend (empty when absent)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        detail = exc if isinstance(exc, ValueError) else "nested too deep"
        raise BadRequest(f"`options` is not valid JSON: {detail}", code="invalid_options") from None
    if not isinstance(value, dict):
        raise BadRequest("`options` must be a JSON object", code="invalid_options")
    return value


def check_reserved(body: dict) -> None:
    for key in RESERVED_KEYS:
        if key in body:
            raise BadRequest(f"`{key}` is set by the server from uploaded files; upload them to POST /v1/ocr",
                             code="reserved_field")
