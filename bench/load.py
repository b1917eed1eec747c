"""The bench's one load generator: a bounded asyncio client over raw sockets.

It sends one prepared HTTP/1.1 request over and over on N keep-alive
connections (answers parsed by httptools, the parser the gateway uses for
its workers), to a TCP port or a Unix socket alike, so the gateway, the single-hop baseline and the worker's own
socket are measured with the same client. Every run is bounded both in time
and in requests, and each connection has one request in flight at a time
(closed loop: latency and throughput are consistent).

Also usable on its own::

    python -m bench.load --url http://127.0.0.1:8000/v1/models/echo/infer -c 16 -d 3
"""

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import httptools

MAX_REQUESTS = 2_000_000


@dataclass
class Target:
    """Where to connect: ``unix`` set means a Unix socket, else host:port."""

    host: str = "127.0.0.1"
    port: int = 0
    unix: str | None = None

    def describe(self) -> str:
        return f"unix:{self.unix}" if self.unix else f"{self.host}:{self.port}"


def http_request(method: str, path: str, body: bytes = b"", content_type: str = "application/json",
                 host: str = "127.0.0.1", headers: dict | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def multipart(fields: dict, file_field: str, filename: str, data: bytes,
              content_type: str = "application/octet-stream") -> tuple[bytes, str]:
    boundary = "venvservebench7b1c"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_us: list = field(default_factory=list)
    statuses: dict = field(default_factory=dict)
    last_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float | None:
        if not self.latencies_us:
            return None
        data = sorted(self.latencies_us)
        return data[min(len(data) - 1, int(q * len(data)))] / 1000.0  # ms

    @property
    def p50_ms(self) -> float | None:
        return statistics.median(self.latencies_us) / 1000.0 if self.latencies_us else None

    def summary(self) -> dict:
        return {"requests": self.requests, "errors": self.errors, "seconds": round(self.seconds, 3),
                "rps": round(self.rps, 1), "p50_ms": _r(self.p50_ms), "p90_ms": _r(self.pct(0.9)),
                "p99_ms": _r(self.pct(0.99)), "statuses": self.statuses, "last_error": self.last_error}


def _r(x):
    return None if x is None else round(x, 4)


class _Client(asyncio.Protocol):
    """One connection: send, read one answer (parsed by httptools, as the gateway parses its workers'), repeat."""

    def __init__(self, loop):
        self.loop = loop
        self.transport = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter = None
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)
        self._fail(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"not HTTP/1.1: {exc}"))
            self.transport.close()

    def on_message_complete(self):
        if self.waiter and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    def _fail(self, exc: Exception) -> None:
        if self.waiter and not self.waiter.done():
            self.waiter.set_exception(exc)

    def exchange(self, data: bytes):
        self.waiter = self.loop.create_future()
        self.transport.write(data)
        return self.waiter


async def _connect(target: Target, loop) -> _Client:
    if target.unix:
        _, proto = await loop.create_unix_connection(lambda: _Client(loop), target.unix)
    else:
        _, proto = await loop.create_connection(lambda: _Client(loop), target.host, target.port)
    return proto


async def run(target: Target, request: bytes, connections: int = 1, duration: float = 2.0,
              warmup: float = 0.5, max_requests: int = MAX_REQUESTS, record: bool = True,
              timeout: float = 60.0, think: float = 0.0) -> Result:
    """Closed-loop load: ``connections`` clients, each one request in flight; bounded in time and count.

    ``think``: seconds each client pauses after an answer (a client that is busy, not flat out).
    """
    loop = asyncio.get_running_loop()
    clients = [await _connect(target, loop) for _ in range(connections)]
    result = Result()
    phase = {"measuring": warmup <= 0, "stop": False}
    left = [max_requests]

    async def worker(client: _Client):
        perf = time.perf_counter_ns
        while not phase["stop"] and left[0] > 0:
            t0 = perf()
            try:
                status = await asyncio.wait_for(client.exchange(request), timeout)
            except (ConnectionError, asyncio.TimeoutError, OSError) as exc:
                if phase["measuring"]:
                    result.errors += 1
                    result.last_error = repr(exc)
                phase["stop"] = True
                return
            if phase["measuring"]:
                left[0] -= 1
                result.requests += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status >= 400:
                    result.errors += 1
                if record:
                    result.latencies_us.append((perf() - t0) / 1000.0)
            if think:
                await asyncio.sleep(think)

    tasks = [loop.create_task(worker(c)) for c in clients]
    try:
        if warmup > 0:
            await asyncio.sleep(warmup)
            phase["measuring"] = True
        started = time.perf_counter()
        deadline = started + duration
        while time.perf_counter() < deadline and left[0] > 0 and not all(t.done() for t in tasks):
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.perf_counter())))
        result.seconds = time.perf_counter() - started
        phase["stop"] = True
        await asyncio.wait(tasks, timeout=timeout)
    finally:
        for t in tasks:
            t.cancel()
        for c in clients:
            if c.transport:
                c.transport.close()
    return result


async def run_sequence(target: Target, requests: list, warmup_count: int = 0,
                       timeout: float = 300.0) -> Result:
    """Send ``requests`` one after another on one connection; the first ``warmup_count`` are not recorded."""
    loop = asyncio.get_running_loop()
    client = await _connect(target, loop)
    result = Result()
    try:
        for i, request in enumerate(requests):
            t0 = time.perf_counter_ns()
            status = await asyncio.wait_for(client.exchange(request), timeout)
            if i >= warmup_count:
                result.requests += 1
                result.latencies_us.append((time.perf_counter_ns() - t0) / 1000.0)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status >= 400:
                    result.errors += 1
        result.seconds = sum(result.latencies_us) / 1e6
    finally:
        if client.transport:
            client.transport.close()
    return result


async def run_count(target: Target, request: bytes, count: int, warmup_count: int = 1,
                    timeout: float = 120.0) -> Result:
    """The same request ``warmup_count`` + ``count`` times on one connection."""
    return await run_sequence(target, [request] * (warmup_count + count), warmup_count, timeout)


def new_loop():
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://HOST:PORT/PATH or unix:/SOCKET:/PATH")
    parser.add_argument("-c", "--connections", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--body", default='{"text": "hello"}')
    args = parser.parse_args(argv)
    if args.url.startswith("unix:"):
        sock, _, path = args.url[5:].partition(":")
        target, host = Target(unix=sock), "worker"
    else:
        hostport, _, path = args.url.split("//", 1)[1].partition("/")
        host, _, port = hostport.rpartition(":")
        target = Target(host=host, port=int(port))
        path = "/" + path
    request = http_request("POST", path or "/", args.body.encode(), host=host)
    loop = new_loop()
    try:
        result = loop.run_until_complete(run(target, request, args.connections, args.duration, args.warmup))
    finally:
        loop.close()
    print(json.dumps(result.summary(), indent=1))


if __name__ == "__main__":
    main()
