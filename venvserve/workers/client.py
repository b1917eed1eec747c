"""The gateway's HTTP client for one worker: a keep-alive pool over its socket.

A lean HTTP/1.1 client on asyncio protocols, not a general-purpose one: it
speaks to exactly one peer, venvserve's own worker runtime
(``venvserve_worker.http11``), which always answers with a Content-Length
body. Per call it costs a few tens of microseconds, where aiohttp costs
~0.2 ms and httpx several times that (docs/performance.md). Transport
failures are translated here into the exception tree, so callers see
WorkerGone or GatewayTimeout, never an OSError.
"""

import asyncio
import json

from venvserve_worker import protocol

from ..errors import GatewayTimeout, VenvserveError

MAX_HEAD_BYTES = 64 * 1024
CONNECT_RETRY_S = 2.0  # how long a connect that finds the worker's backlog full is retried


class WorkerGone(Exception):
    """The connection to the worker broke (it died, or is dying)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    __slots__ = ("transport", "waiter", "buffer", "length", "status", "keep_alive", "closed")

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.buffer = bytearray()
        self.length = -1  # body length once the head is parsed; -1 while reading the head
        self.status = 0
        self.keep_alive = True
        self.closed = False

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.length == -2:  # no Content-Length: the body ends with the connection
                self._finish(bytes(self.buffer))
            else:
                waiter.set_exception(WorkerGone(
                    "the worker closed the connection" + (f": {exc}" if exc else "")))

    def data_received(self, data):
        if self.waiter is None or self.waiter.done():
            self._fail("the worker sent data nobody asked for")
            return
        self.buffer += data
        if self.length == -1:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._fail("the worker's answer has an oversized head")
                return
            try:
                self._parse_head(bytes(self.buffer[:end]))
            except (ValueError, IndexError):
                self._fail("the worker's answer is not HTTP/1.1")
                return
            del self.buffer[:end + 4]
        if self.length >= 0 and len(self.buffer) >= self.length:
            if len(self.buffer) > self.length:
                self._fail("the worker sent more than its Content-Length")
                return
            self._finish(bytes(self.buffer))

    def eof_received(self):
        return False  # close the transport; connection_lost reports it

    # -- parsing -------------------------------------------------------------

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        if not version.startswith("HTTP/1."):
            raise ValueError(version)
        self.status = int(status)
        self.length = -2
        self.keep_alive = version == "HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                self.length = int(value)
                if self.length < 0:
                    raise ValueError(value)
            elif name == "connection":
                self.keep_alive = value.strip().lower() == "keep-alive"
            elif name == "transfer-encoding":
                raise ValueError("transfer-encoding is not spoken here")
        if self.length == -2:
            self.keep_alive = False

    def _finish(self, body: bytes) -> None:
        waiter, self.waiter = self.waiter, None
        self.buffer = bytearray()
        self.length = -1
        waiter.set_result((self.status, body))

    def _fail(self, why: str) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(WorkerGone(why))
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- one exchange ----------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.length = -1
        self.keep_alive = True
        self.transport.write(data)
        return self.waiter


class WorkerClient:
    """Calls one worker; at most ``pool_size`` connections, reused while they stay healthy."""

    def __init__(self, socket_path: str | None, port: int | None, token: str, pool_size: int):
        self.socket_path = socket_path
        self.port = port
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
            except BlockingIOError:
                # A full listen backlog (EAGAIN on a Unix socket): the worker is alive, only busy accepting.
                if loop.time() + delay > give_up:
                    where = self.socket_path or f"127.0.0.1:{self.port}"
                    raise WorkerGone(f"cannot connect to the worker at {where}: its backlog stayed full") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            except OSError as exc:
                where = self.socket_path or f"127.0.0.1:{self.port}"
                raise WorkerGone(f"cannot connect to the worker at {where}: {exc}") from exc

    async def _take(self, deadline: float | None) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self._open -= 1
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
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
                self._open -= 1
        self._open += 1
        try:
            return await self._connect(_left(deadline))
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    def _give_back(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not conn.closed and not self._closed:
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
        status, body = await self._exchange(method, path, payload, timeout)
        try:
            data = json.loads(body)
        except ValueError:
            raise WorkerGone(f"the worker answered {status} with a body that is not JSON") from None
        if status != 200:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            raise VenvserveError(error.get("message", f"worker answered {status}"),
                                 code=error.get("code", "backend_error"), status=status)
        return data

    async def _exchange(self, method: str, path: str, payload: dict | None,
                        timeout: float | None) -> tuple[int, bytes]:
        if self._closed:
            raise WorkerGone("the client is closed")
        if payload is None:
            body = b""
            extra = "Content-Length: 0\r\n\r\n"
        else:
            body = json.dumps(payload, separators=(",", ":")).encode()
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
            status, body = await answer
            done = True
            return status, body
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
