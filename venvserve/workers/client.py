"""The gateway's HTTP client for one worker: a keep-alive pool over its socket.

A lean HTTP/1.1 client on asyncio protocols, not a general-purpose one: it
speaks to exactly one peer, venvserve's own worker runtime, which answers
every request with a Content-Length body. Answers are parsed by httptools'
C parser (llhttp) and held to that contract: a status line, one valid
Content-Length, no Transfer-Encoding, a head under MAX_HEAD_BYTES and a body
under MAX_BODY_BYTES, nothing sent unasked. Transport failures are translated
here, so callers see three things only:

    WorkerGone       the connection broke or was refused (the worker died, or is dying)
     └── BadAnswer   the worker answered something that is not that contract
    GatewayTimeout   connect or answer took longer than the caller allowed

A connection goes back to the pool only after a clean, complete exchange;
one whose call was cancelled or timed out is closed, never reused half-read.
"""

import asyncio
import json
import time

import httptools
from venvserve_worker import protocol

from ..errors import GatewayTimeout, VenvserveError

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 256 * 1024 * 1024
CONNECT_RETRY_S = 2.0  # how long a connect that finds the worker's backlog full is retried
# A pooled connection idle longer than this is closed rather than reused: well below the worker's
# own idle limit (an hour), so the gateway never writes to a connection the worker is closing.
POOL_IDLE_S = 300.0


class WorkerGone(Exception):
    """The connection to the worker broke (it died, or is dying)."""


class BadAnswer(WorkerGone):
    """The worker's answer broke the HTTP contract it keeps with the gateway."""


class _Refused(Exception):
    pass


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.head_seen = 0  # bytes of header lines parsed
        self.head_fed = 0  # bytes fed while the head was unfinished
        self.in_head = True
        self.length: int | None = None
        self.status = 0
        self.keep_alive = True
        self.body = bytearray()
        self.answer: tuple[int, bytes] | None = None

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(WorkerGone("the worker closed the connection" + (f": {exc}" if exc else "")))

    def data_received(self, data):
        if self.waiter is None or self.waiter.done():
            self._fail(BadAnswer("the worker sent data nobody asked for"))
            return
        try:
            self.parser.feed_data(data)
            if self.answer is not None:
                # Resolved only once the whole chunk parsed: bytes after the answer are an error too.
                waiter, self.waiter, answer, self.answer = self.waiter, None, self.answer, None
                waiter.set_result(answer)
                return
            if self.in_head:
                self.head_fed += len(data)  # a head still unfinished: all of it is head
                if self.head_fed > MAX_HEAD_BYTES:
                    raise _Refused("an oversized head")
        except _Refused as exc:
            self._fail(BadAnswer(f"the worker's answer was refused: {exc}"))
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ if isinstance(exc.__context__, (_Refused, BadAnswer)) else exc
            self._fail(BadAnswer(f"the worker's answer was refused: {cause}"))
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(f"the worker's answer is not valid HTTP/1.1: {exc}"))

    def eof_received(self):
        return False  # close the transport; connection_lost reports it

    # -- httptools callbacks -----------------------------------------------------

    def on_message_begin(self):
        if self.answer is not None:
            raise _Refused("a second answer to one request")

    def on_header(self, name: bytes, value: bytes):
        self.head_seen += len(name) + len(value) + 4
        if self.head_seen > MAX_HEAD_BYTES:
            raise _Refused("an oversized head")
        name = name.lower()
        if name == b"content-length":
            self.length = int(value)  # llhttp has checked: digits only, not repeated
        elif name == b"transfer-encoding":
            raise _Refused("Transfer-Encoding is not spoken here")

    def on_headers_complete(self):
        self.in_head = False
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self.status < 200:
            raise _Refused(f"status {self.status}")
        if self.length is None:
            raise _Refused("no Content-Length")
        if self.length > MAX_BODY_BYTES:
            raise _Refused(f"a body of {self.length} bytes (limit {MAX_BODY_BYTES})")

    def on_body(self, body: bytes):
        self.body += body

    def on_message_complete(self):
        self.answer = (self.status, bytes(self.body))
        self.body = bytearray()

    # -- one exchange ----------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def request(self, data: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self._reset()
        self.transport.write(data)
        return self.waiter


class WorkerClient:
    """Calls one worker; at most ``pool_size`` connections, reused while they stay healthy."""

    def __init__(self, socket_path: str | None, port: int | None, token: str, pool_size: int):
        self.socket_path = socket_path
        self.port = port
        self.where = socket_path or f"127.0.0.1:{port}"
        host = "worker" if socket_path else f"127.0.0.1:{port}"
        token_line = f"{protocol.TOKEN_HEADER}: {token}\r\n" if token else ""
        self._headers = f" HTTP/1.1\r\nHost: {host}\r\n{token_line}"
        self._idle: list[_Connection] = []
        self._open = 0
        self._limit = max(1, pool_size)
        self._slot_waiters: list[asyncio.Future] = []
        self._closed = False

    # -- the pool ----------------------------------------------------------------

    async def _connect(self, timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + min(CONNECT_RETRY_S, timeout if timeout is not None else CONNECT_RETRY_S)
        delay = 0.001
        while True:
            try:
                if self.socket_path:
                    connecting = loop.create_unix_connection(_Connection, self.socket_path)
                else:
                    connecting = loop.create_connection(_Connection, "127.0.0.1", self.port)
                _, conn = await asyncio.wait_for(connecting, timeout)
                return conn
            except asyncio.TimeoutError:
                # Before OSError: on Python 3.11+ a timeout *is* an OSError, and it is no crash.
                raise GatewayTimeout(f"could not connect to the worker within {timeout:.1f}s") from None
            except BlockingIOError:
                # A full listen backlog (EAGAIN on a Unix socket): the worker is alive, only busy accepting.
                if loop.time() + delay > give_up:
                    raise WorkerGone(f"cannot connect to the worker at {self.where}: its backlog stayed full") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            except OSError as exc:
                raise WorkerGone(f"cannot connect to the worker at {self.where}: {exc}") from exc

    def _reuse(self) -> _Connection | None:
        """The most recently used healthy idle connection; stale or closed ones are dropped."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < POOL_IDLE_S:
                return conn
            conn.close()
            self._open -= 1
        return None

    async def _take(self, deadline: float | None) -> _Connection:
        conn = self._reuse()
        if conn is not None:
            return conn
        while self._open >= self._limit:
            waiter = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, _left(deadline))
            except BaseException:
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake()  # woken just as it gave up: hand the free slot on
                raise
            conn = self._reuse()
            if conn is not None:
                return conn
        self._open += 1
        try:
            return await self._connect(_left(deadline))
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    def _give_back(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not conn.closed and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    # -- calls -----------------------------------------------------------------

    async def call(self, method: str, path: str, payload: dict | None = None,
                   timeout: float | None = None) -> dict:
        """One JSON exchange; a non-200 answer is raised as the worker's own error."""
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        status, answer = await self.call_raw(method, path, body if payload is not None else None, timeout)
        try:
            data = json.loads(answer)
        except (ValueError, RecursionError):
            raise BadAnswer(f"the worker answered {status} with a body that is not JSON") from None
        if status != 200:
            error = data.get("error") if isinstance(data, dict) else None
            error = error if isinstance(error, dict) else {}
            raise VenvserveError(str(error.get("message") or f"worker answered {status}"),
                                 code=str(error.get("code") or "backend_error"), status=status)
        return data

    async def call_raw(self, method: str, path: str, body: bytes | None = None,
                       timeout: float | None = None) -> tuple[int, bytes]:
        """One exchange of bytes: (status, body) as the worker wrote them."""
        if self._closed:
            raise WorkerGone("the client is closed")
        if body is None:
            extra = "Content-Length: 0\r\n\r\n"
            body = b""
        else:
            extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        data = (method + " " + path + self._headers + extra).encode("latin-1") + body
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        timer = None
        conn = None
        done = False
        try:
            conn = await self._take(deadline)
            answer = conn.request(data)
            if deadline is not None:
                timer = loop.call_at(deadline, _expire, answer)
            status, payload = await answer
            done = True
            return status, payload
        except asyncio.TimeoutError:
            raise GatewayTimeout(f"the worker did not answer within {timeout:.0f}s",
                                 hint="raise --request-timeout-s, or send smaller inputs") from None
        finally:
            if timer is not None:
                timer.cancel()
            if conn is not None:
                # Only a connection whose exchange completed cleanly goes back to the pool.
                self._give_back(conn, done and conn.keep_alive)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._open -= 1
        self._wake()


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())


def _expire(answer: asyncio.Future) -> None:
    if not answer.done():
        answer.set_exception(asyncio.TimeoutError())
