"""Strict HTTP/1.1 framing for exactly one client: the gateway.

``http.server`` pulls in ``email`` and ``http.client`` (70-100 ms of imports)
and parses far more than the gateway ever sends. This reads the subset the
gateway uses (keep-alive, Content-Length bodies, JSON in and out) and refuses
everything else, as RFC 9112 §6.3 asks of a server that cannot frame a body
safely: any ``Transfer-Encoding`` is 501, a ``Content-Length`` that is not one
plain decimal number is 400, and a connection whose body ends short is closed
without a request. Every refusal raises ``HTTPError`` and nothing else.

The head is parsed only when it is complete (``head_end`` finds its blank
line), so the server can check the token before a single body byte is read.
"""

import json
import re

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
           503: "Service Unavailable", 505: "HTTP Version Not Supported"}

# RFC 9110 §5.6.2 token characters: method and header names.
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_TARGET = re.compile(rb"^/[\x21-\x7e]*$")
# Field values: visible ASCII, obs-text, spaces and tabs; no CR, LF or NUL.
_VALUE = re.compile(rb"^[\t\x20-\x7e\x80-\xff]*$")
_DIGITS = re.compile(rb"^[0-9]+$")
_MAX_LENGTH_DIGITS = 18  # 10**18 bytes: int() stays cheap, and any real limit is far below


class Limits:
    """Sizes the framing refuses above; the worker config may lower or raise them."""

    __slots__ = ("max_head", "max_headers", "max_body")

    def __init__(self, max_head=64 * 1024, max_headers=100, max_body=64 * 1024 * 1024):
        self.max_head = max_head
        self.max_headers = max_headers
        self.max_body = max_body


class HTTPError(Exception):
    """A request the framing refuses: answered with ``status``, then the connection closes."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Head:
    __slots__ = ("method", "path", "version", "headers", "length", "size")

    def __init__(self, method, path, version, headers, length, size):
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers  # lower-case name -> value (latin-1 text)
        self.length = length  # body bytes that follow the head
        self.size = size  # bytes of the head, blank line included

    @property
    def keep_alive(self):
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


class Request:
    __slots__ = ("method", "path", "headers", "body")

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body or b"{}")


def head_end(buf, limits):
    """Bytes of the head (blank line included) once ``buf`` holds all of it, else None.
    A head longer than ``limits.max_head`` is refused whether or not its end has come."""
    end = buf.find(b"\r\n\r\n", 0, limits.max_head + 4)
    if end >= 0:
        return end + 4
    if len(buf) > limits.max_head:
        raise HTTPError(431, "head_too_large", "request line and headers exceed %d bytes" % limits.max_head)
    return None


def parse_head(data, limits):
    """The request line and headers in ``data`` (ending in the blank line), checked strictly."""
    size = len(data)
    if not data.endswith(b"\r\n\r\n") or size > limits.max_head + 4:
        raise HTTPError(400, "bad_request", "incomplete request head")
    lines = data[:-4].split(b"\r\n")
    if any(b"\r" in line or b"\n" in line or b"\0" in line for line in lines):
        raise HTTPError(400, "bad_request", "bare CR, LF or NUL in the request head")
    method, path, version = _request_line(lines[0])
    if len(lines) - 1 > limits.max_headers:
        raise HTTPError(431, "too_many_headers", "more than %d header fields" % limits.max_headers)
    headers = {}
    lengths = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise HTTPError(400, "bad_request", "malformed header field")
        value = value.strip(b" \t")
        if not _VALUE.match(value):
            raise HTTPError(400, "bad_request", "invalid characters in a header value")
        key = name.decode("ascii").lower()
        if key == "transfer-encoding":
            raise HTTPError(501, "transfer_encoding", "Transfer-Encoding is not supported; send Content-Length")
        if key == "content-length":
            lengths.extend(v.strip(b" \t") for v in value.split(b","))
        text = value.decode("latin-1")
        headers[key] = headers[key] + ", " + text if key in headers else text
    length = _content_length(lengths, limits)
    return Head(method, path, version, headers, length, size)


def _request_line(line):
    parts = line.split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not _TARGET.match(parts[1]):
        raise HTTPError(400, "bad_request", "malformed request line")
    if parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HTTPError(505, "http_version", "only HTTP/1.1 and HTTP/1.0 are served")
    return parts[0].decode("ascii"), parts[1].decode("ascii"), parts[2].decode("ascii")


def _content_length(values, limits):
    """RFC 9112 §6.3: several Content-Length values are only acceptable when all are equal."""
    if not values:
        return 0
    if any(not _DIGITS.match(v) or len(v) > _MAX_LENGTH_DIGITS for v in values):
        raise HTTPError(400, "bad_content_length", "Content-Length must be one decimal number")
    numbers = {int(v) for v in values}
    if len(numbers) != 1:
        raise HTTPError(400, "bad_content_length", "conflicting Content-Length values")
    length = numbers.pop()
    if length > limits.max_body:
        raise HTTPError(413, "body_too_large", "request body of %d bytes exceeds the limit of %d"
                        % (length, limits.max_body))
    return length


def parse_request(buf, limits):
    """(Request, bytes used) for the first complete request in ``buf``; None while it is incomplete."""
    end = head_end(buf, limits)
    if end is None:
        return None
    head = parse_head(bytes(buf[:end]), limits)
    if len(buf) < end + head.length:
        return None
    body = bytes(buf[end:end + head.length])
    return Request(head.method, head.path, head.headers, body), end + head.length


def encode_response(status, payload, close=False):
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (
        status, REASONS.get(status, "Status"), len(body), "Connection: close\r\n" if close else "")
    return head.encode("latin-1") + body


def error_response(exc):
    """The answer to a refused request; the connection closes after it."""
    return encode_response(exc.status, {"error": {"code": exc.code, "message": exc.message}}, close=True)
