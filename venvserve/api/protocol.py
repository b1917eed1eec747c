"""uvicorn's httptools protocol with the limits a public server needs on every connection.

uvicorn bounds neither the size of a request head nor the time to send one:
a 100 MB header line is buffered, 100,000 headers are accepted, and 20,000
connections that each send half a request hold their descriptors forever.
This subclass adds, per connection:

- **head size**: the request line and headers together over ``max_head``
  bytes get 431 ``headers_too_large`` and a closed connection; counted as the
  bytes arrive, so the parser never buffers more than one read beyond it;
- **head time**: a request head not complete within ``head_timeout_s`` of its
  first byte (or of the connection, for the first one) gets 408
  ``request_timeout``; a connection that never sent anything is just closed;
- **body idle time**: a request body that stops arriving for
  ``head_timeout_s`` while the app waits for it gets 408 (a chunk size of
  ``ffffffffffffffff`` followed by silence does not hold a connection);
- a response sent before its request's body was read lets the rest of the
  body be dropped up to 1 MB (a 404 to a small POST keeps its connection);
  a refused large upload's connection is closed instead of read to the end.
"""

import json

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import error_body


def guarded_protocol(max_head: int, head_timeout_s: float) -> type:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"max_head": max_head, "head_timeout_s": head_timeout_s})


def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps(error_body(code, message)).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


LINGER_S = 2.0
LINGER_BYTES = 16 * 2**20
SKIP_BYTES = 2**20
INVALID = _raw_response(400, "Bad Request", "invalid_http", "the request is not valid HTTP/1.1")
TIMEOUT = _raw_response(408, "Request Timeout", "request_timeout",
                        "the request did not arrive in time; the connection is closed")


class _Refused(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    max_head = 32 * 1024
    head_timeout_s = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._in_head = True
        self._head_bytes = 0  # bytes fed while a head was incomplete (an upper bound)
        self._head_seen = 0  # exact: request line and header bytes the parser reported
        self._timer = None
        self._refusal: bytes | None = None  # set by a parser callback that stops the parser
        self._draining = False  # answered and closing: what arrives now is discarded
        self._discarded = 0
        self._skipped = 0  # body bytes dropped after the app answered
        self._arm(self._head_expired)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- timers ----------------------------------------------------------------

    def _arm(self, callback) -> None:
        self._disarm()
        self._timer = self.loop.call_later(self.head_timeout_s, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_expired(self) -> None:
        self._timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self._head_bytes:
            self._refuse(TIMEOUT)
        else:
            self.transport.close()  # an idle connection: nothing to answer

    def _body_expired(self) -> None:
        self._timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body or cycle.response_complete:
            return
        if self.flow.read_paused:  # the app is not reading: the client is not the one who is slow
            self._arm(self._body_expired)
            return
        self._refuse(TIMEOUT)

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` (unless the app has begun its own) and close the connection."""
        self._disarm()
        if self._draining:
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and self.scope is cycle.scope:
            cycle.disconnected = True  # the app's task, if any, stops reading and writing
            cycle.message_event.set()
            if cycle.response_started:
                response = b""
        self.transport.write(response)
        self._linger()

    def _linger(self) -> None:
        """Close after the client had a moment to read the answer.

        Closing a socket with unread bytes in it makes the kernel send a reset,
        and a client still sending (a 200 KB header) would lose the answer: so
        the write side is shut first, and what still arrives is discarded.
        """
        self._draining = True
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    # -- data --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._draining:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        if self.transport.is_closing():
            return
        if self._in_head:
            self._head_bytes += len(data)
        elif self.cycle is not None and self.cycle.more_body:
            self._arm(self._body_expired)  # the body is still coming: restart its idle clock
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:  # not HTTP, or a callback below refused the request
            self._refuse(self._refusal or INVALID)
            return
        if self._in_head and not self.transport.is_closing() and (
                self._head_bytes > self.max_head + 65536 or self._head_seen > self.max_head):
            self._refuse(self._too_large())

    def _too_large(self) -> bytes:
        return _raw_response(431, "Request Header Fields Too Large", "headers_too_large",
                             f"the request's headers are over this server's limit of {self.max_head // 1024} KB")

    # -- parser callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._draining:
            raise _Refused  # closing: no new request on this connection
        super().on_message_begin()
        self._in_head = True
        self._head_seen = 0
        if self._timer is None:
            self._arm(self._head_expired)

    def on_url(self, url: bytes) -> None:
        self._head_seen += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_seen += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._disarm()
        if self._head_seen > self.max_head:
            self._refusal = self._too_large()
            raise _Refused  # stops the parser; data_received answers
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.more_body:
            self._arm(self._body_expired)

    def on_message_complete(self) -> None:
        if self._timer is not None and not self._in_head:
            self._disarm()
        super().on_message_complete()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self._draining:
            # The app answered without reading the body (a 404, a refused upload): the rest is
            # parsed and dropped so the connection can carry the next request, up to a point.
            self._skipped += len(body)
            if self._skipped > SKIP_BYTES:
                self._linger()
                raise _Refused
            return
        super().on_body(body)

    def on_response_complete(self) -> None:
        self._skipped = 0
        super().on_response_complete()
