"""The wire between the gateway and a decoder process: length-prefixed JSON frames.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON
holding one object. Both directions use it over the decoder's stdin/stdout.
Anything else (a short read, a length over ``MAX_FRAME``, bytes that are not
JSON, JSON that is not an object) is a ``ProtocolError``: the gateway then
kills that decoder and fails the request in hand, never itself.

Requests carry ``op`` (``image``, ``pdf``, ``render``, ``close``) and their
arguments; answers carry ``ok`` and either the result's fields or
``status``/``code``/``message`` (a client error the gateway answers as is).
"""

import json
import struct

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 20  # requests and answers are a few hundred bytes: anything near this is garbage


class ProtocolError(Exception):
    """The other side sent something that is not a frame."""


def encode(message: dict) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode()
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(payload)} bytes is over the {MAX_FRAME}-byte limit")
    return HEADER.pack(len(payload)) + payload


def length(header: bytes) -> int:
    if len(header) != HEADER.size:
        raise ProtocolError(f"frame header cut short ({len(header)} of {HEADER.size} bytes)")
    (size,) = HEADER.unpack(header)
    if size == 0 or size > MAX_FRAME:
        raise ProtocolError(f"frame length {size} is outside 1..{MAX_FRAME}")
    return size


def decode(payload: bytes) -> dict:
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"frame is not JSON: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"frame holds a JSON {type(message).__name__}, not an object")
    return message


def read_frame(stream) -> dict | None:
    """One frame from a blocking binary stream; None at a clean end of stream (no bytes at all)."""
    header = _read_exactly(stream, HEADER.size)
    if not header:
        return None
    size = length(header)
    payload = _read_exactly(stream, size)
    if len(payload) != size:
        raise ProtocolError(f"frame body cut short ({len(payload)} of {size} bytes)")
    return decode(payload)


async def read_frame_async(reader) -> dict | None:
    """One frame from an ``asyncio.StreamReader``; None at a clean end of stream."""
    import asyncio

    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError(f"frame header cut short ({len(exc.partial)} of {HEADER.size} bytes)") from None
    size = length(header)
    try:
        payload = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError(f"frame body cut short ({len(exc.partial)} of {size} bytes)") from None
    return decode(payload)


def _read_exactly(stream, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
