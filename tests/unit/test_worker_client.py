"""The gateway's client to one worker: strict answers, a timeout told from a crash,
no half-read connection back in the pool. Against a scripted peer on a Unix socket."""

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venvserve.errors import GatewayTimeout, VenvserveError
from venvserve.workers import client as client_module
from venvserve.workers.client import BadAnswer, WorkerClient, WorkerGone, _Connection


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class Peer:
    """A worker stand-in: answers each request with what ``respond(body)`` returns (None: never)."""

    def __init__(self, respond):
        self.respond = respond
        self.connections = 0
        self.closed = 0
        self.dir = tempfile.mkdtemp(prefix="vs-", dir="/tmp")
        self.path = os.path.join(self.dir, "w.sock")

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                answer = self.respond(body)
                if answer is None:
                    await reader.read()  # hang until the client goes
                    break
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed += 1
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self):
        server = await asyncio.start_unix_server(self.handle, self.path)
        try:
            yield WorkerClient(self.path, None, "", pool_size=2)
        finally:
            server.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_answers_come_back_as_the_worker_wrote_them_over_one_kept_alive_connection():
    peer = Peer(lambda body: ok(b'{"echo" :  ' + body + b"}"))

    async def go():
        async with peer.running() as client:
            raw = await client.call_raw("POST", "/infer", b'{"a":1}', timeout=5)
            data = await client.call("POST", "/infer", {"b": 2}, timeout=5)
            return raw, data

    raw, data = run(go())
    assert raw == (200, b'{"echo" :  {"a":1}}')
    assert data == {"echo": {"b": 2}}
    assert peer.connections == 1


def test_a_connection_idle_past_the_pool_limit_is_closed_not_reused(monkeypatch):
    # The worker closes connections idle for an hour; the gateway must drop them well before.
    peer = Peer(lambda body: ok(b"{}"))
    clock = [1000.0]
    monkeypatch.setattr(client_module, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))

    async def go():
        async with peer.running() as client:
            await client.call_raw("POST", "/infer", b"{}", timeout=5)
            clock[0] += client_module.POOL_IDLE_S - 1
            await client.call_raw("POST", "/infer", b"{}", timeout=5)  # still fresh: reused
            clock[0] += client_module.POOL_IDLE_S + 1
            await client.call_raw("POST", "/infer", b"{}", timeout=5)  # stale: a new connection
            await asyncio.sleep(0.05)  # let the peer see the stale one close

    run(go())
    assert peer.connections == 2
    assert peer.closed >= 1


def test_a_worker_error_keeps_its_status_and_code():
    body = json.dumps({"error": {"code": "invalid_input", "message": "no"}}).encode()
    peer = Peer(lambda _: b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    async def go():
        async with peer.running() as client:
            with pytest.raises(VenvserveError) as caught:
                await client.call("POST", "/infer", {}, timeout=5)
            return caught.value

    error = run(go())
    assert (error.status, error.code, error.message) == (400, "invalid_input", "no")


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\n\r\n{}",  # no Content-Length
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
    b"SMTP 220 hello\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}EXTRA",  # more than it said
    b"HTTP/1.1 200 OK\r\nX: " + b"y" * (70 * 1024) + b"\r\nContent-Length: 2\r\n\r\n{}",  # oversized head
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nnot json",
], ids=["no-length", "chunked", "negative", "duplicate", "non-digit", "huge", "not-http", "bad-status",
        "informational", "extra-bytes", "big-head", "not-json"])
def test_a_malformed_answer_is_a_bad_answer_and_its_connection_is_dropped(answer):
    peer = Peer(lambda _: answer)

    async def go():
        async with peer.running() as client:
            with pytest.raises(BadAnswer):
                await client.call("POST", "/infer", {}, timeout=5)
            assert client._idle == [] and client._open == 0

    run(go())


def test_a_body_over_the_cap_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setattr(client_module, "MAX_BODY_BYTES", 1000)
    peer = Peer(lambda _: ok(b"x" * 1001))

    async def go():
        async with peer.running() as client:
            with pytest.raises(BadAnswer, match="1001 bytes"):
                await client.call_raw("POST", "/infer", b"{}", timeout=5)

    run(go())


def test_a_short_body_then_a_closed_connection_is_worker_gone_not_an_answer():
    peer = Peer(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}")

    async def go():
        async with peer.running() as client:
            with pytest.raises(WorkerGone) as caught:
                await client.call_raw("POST", "/infer", b"{}", timeout=5)
            assert not isinstance(caught.value, BadAnswer)

    run(go())


def test_a_worker_that_does_not_answer_in_time_is_a_timeout_and_its_connection_is_closed():
    peer = Peer(lambda body: None if body == b"hang" else ok(b"{}"))

    async def go():
        async with peer.running() as client:
            with pytest.raises(GatewayTimeout):
                await client.call_raw("POST", "/infer", b"hang", timeout=0.2)
            assert client._idle == [] and client._open == 0
            assert await client.call_raw("POST", "/infer", b"{}", timeout=5) == (200, b"{}")

    run(go())
    assert peer.connections == 2


def test_a_connect_timeout_is_a_timeout_not_a_crash(monkeypatch):
    async def never(*args, **kwargs):
        await asyncio.sleep(3600)

    async def go():
        client = WorkerClient("/nonexistent.sock", None, "", pool_size=1)
        monkeypatch.setattr(asyncio.get_running_loop(), "create_unix_connection", never)
        with pytest.raises(GatewayTimeout):
            await client.call_raw("GET", "/healthz", None, timeout=0.1)

    run(go())


def test_a_refused_connect_is_worker_gone():
    async def go():
        client = WorkerClient("/nonexistent-venvserve.sock", None, "", pool_size=1)
        with pytest.raises(WorkerGone):
            await client.call_raw("GET", "/healthz", None, timeout=1)

    run(go())


def test_a_cancelled_call_never_returns_its_connection_to_the_pool():
    peer = Peer(lambda body: None if body == b"slow" else ok(b"{}"))

    async def go():
        async with peer.running() as client:
            call = asyncio.ensure_future(client.call_raw("POST", "/infer", b"slow", timeout=30))
            await asyncio.sleep(0.05)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert client._idle == [] and client._open == 0
            assert await client.call_raw("POST", "/infer", b"{}", timeout=5) == (200, b"{}")

    run(go())
    assert peer.connections == 2


# -- the parser alone, fed any bytes ---------------------------------------------------------


class FakeTransport:
    def __init__(self):
        self.closed = False

    def write(self, data):
        pass

    def close(self):
        self.closed = True


def exchange(chunks: list[bytes]):
    """Feed ``chunks`` as one answer, then the peer closes: the future's outcome."""

    async def go():
        conn = _Connection()
        conn.connection_made(FakeTransport())
        answer = conn.request(b"GET / HTTP/1.1\r\n\r\n")
        for chunk in chunks:
            if answer.done():
                break
            conn.data_received(chunk)
        if not answer.done():
            conn.connection_lost(None)
        assert answer.done()
        return answer.result() if answer.exception() is None else answer.exception()

    return asyncio.run(go())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_any_bytes_give_an_answer_or_worker_gone_never_another_error(chunks):
    outcome = exchange(chunks)
    if isinstance(outcome, tuple):
        status, body = outcome
        assert 200 <= status <= 999 and isinstance(body, bytes)
    else:
        assert isinstance(outcome, WorkerGone), repr(outcome)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.data())
def test_a_valid_answer_split_anywhere_is_read_exactly(body, data):
    wire = ok(body, b"Content-Type: application/json\r\n")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
    assert exchange(chunks) == (200, body)
