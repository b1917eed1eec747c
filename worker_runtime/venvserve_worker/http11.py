"""A minimal HTTP/1.1 server for exactly one client: the gateway.

``http.server`` pulls in ``email`` and ``http.client`` (70-100 ms of imports)
and parses far more than the gateway ever sends. This speaks the subset the
gateway uses: keep-alive, Content-Length bodies, JSON in and out.
"""

import json
import socket
import socketserver

MAX_HEADER_BYTES = 64 * 1024
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


class Request:
    __slots__ = ("method", "path", "headers", "body")

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body or b"{}")


def read_request(rfile):
    """Parse one request; None at a clean end of the connection."""
    line = rfile.readline(MAX_HEADER_BYTES)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("malformed request line")
    method, path, _version = parts
    headers = {}
    size = 0
    while True:
        line = rfile.readline(MAX_HEADER_BYTES)
        size += len(line)
        if not line or size > MAX_HEADER_BYTES:
            raise ValueError("headers too long or connection closed")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = rfile.read(length) if length else b""
    return Request(method, path, headers, body)


def encode_response(status, payload, close=False):
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (
        status, REASONS.get(status, "Status"), len(body), "Connection: close\r\n" if close else "")
    return head.encode("latin-1") + body


class Handler(socketserver.StreamRequestHandler):
    """Serves requests on one connection until the gateway closes it."""

    rbufsize = 65536

    def handle(self):
        app = self.server.app
        while True:
            try:
                request = read_request(self.rfile)
            except (ValueError, OSError):
                return
            if request is None:
                return
            status, payload = app(request)
            close = request.headers.get("connection", "").lower() == "close"
            try:
                self.wfile.write(encode_response(status, payload, close))
            except OSError:
                return
            after = getattr(app, "after_response", None)
            if after is not None:
                after(request, status)
            if close:
                return


# The gateway opens up to max_concurrency + 2 connections at once; socketserver's
# default backlog of 5 made a burst of connects fail with EAGAIN (a 502).
LISTEN_BACKLOG = 1024


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, path, app):
        self.app = app
        super().__init__(path, Handler)


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    allow_reuse_address = True

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, Handler)

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()
