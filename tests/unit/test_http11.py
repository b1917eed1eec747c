"""The worker runtime's HTTP framing (RFC 9112 §6.3) and its connection server."""

import json
import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import read_until_closed, wait_until
from venvserve_worker.connections import Server
from venvserve_worker.http11 import HTTPError, Limits, parse_request

LIMITS = Limits(max_head=1024, max_headers=10, max_body=1000)


def refused(data: bytes, limits: Limits = LIMITS) -> tuple[int, str]:
    with pytest.raises(HTTPError) as info:
        parse_request(data, limits)
    return info.value.status, info.value.code


def post(body: bytes, *headers: str) -> bytes:
    return ("POST /infer HTTP/1.1\r\nHost: w\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body


# -- framing ---------------------------------------------------------------------

def test_a_complete_request_parses_and_reports_what_it_used():
    data = post(b'{"a":1}', "Content-Length: 7") + b"GET /healthz HTTP/1.1\r\n\r\n"
    request, used = parse_request(data, LIMITS)
    assert (request.method, request.path, request.body) == ("POST", "/infer", b'{"a":1}')
    assert request.headers["content-length"] == "7" and request.json() == {"a": 1}
    second, used2 = parse_request(data[used:], LIMITS)
    assert (second.method, second.path, second.body, used + used2) == ("GET", "/healthz", b"", len(data))


def test_incomplete_input_is_not_a_request():
    assert parse_request(b"GET /healthz HTTP/1.1\r\nHost: w\r\n", LIMITS) is None
    assert parse_request(post(b"12345", "Content-Length: 10"), LIMITS) is None  # a short body waits


@pytest.mark.parametrize("header", ["Transfer-Encoding: chunked", "transfer-encoding: identity",
                                    "Transfer-Encoding: gzip, chunked"])
def test_any_transfer_encoding_is_not_implemented(header):
    assert refused(post(b"5\r\nhello\r\n0\r\n\r\n", header)) == (501, "transfer_encoding")
    assert refused(post(b"hello", "Content-Length: 5", header)) == (501, "transfer_encoding")


@pytest.mark.parametrize("headers", [
    ["Content-Length: -1"], ["Content-Length: +5"], ["Content-Length: 5a"], ["Content-Length: 0x5"],
    ["Content-Length: "], ["Content-Length: 5", "Content-Length: 6"], ["Content-Length: 5, 6"],
    ["Content-Length: 1 000"], ["Content-Length: ５"], ["Content-Length: 1000000000000000000000000"],
])
def test_a_content_length_that_is_not_one_number_is_refused(headers):
    assert refused(post(b"hello", *headers)) == (400, "bad_content_length")


def test_equal_duplicate_lengths_are_one_length():
    request, _ = parse_request(post(b"hello", "Content-Length: 5", "Content-Length: 5"), LIMITS)
    assert request.body == b"hello"
    request, _ = parse_request(post(b"hello", "Content-Length: 5, 5"), LIMITS)
    assert request.body == b"hello"


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    assert refused(post(b"", "Content-Length: 1001")) == (413, "body_too_large")
    assert refused(post(b"", "Content-Length: %d" % 10 ** 15)) == (413, "body_too_large")


def test_head_size_and_header_count_are_capped():
    assert refused(b"GET /" + b"a" * 2000) == (431, "head_too_large")  # no end in sight
    assert refused(post(b"", "X-Big: " + "b" * 2000)) == (431, "head_too_large")
    assert refused(post(b"", *["X-%d: 1" % i for i in range(11)])) == (431, "too_many_headers")


@pytest.mark.parametrize("data", [
    b"GET /healthz\r\n\r\n", b"GET  /healthz HTTP/1.1\r\n\r\n", b"GET healthz HTTP/1.1\r\n\r\n",
    b"G(T /healthz HTTP/1.1\r\n\r\n", b"GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nNoColon\r\n\r\n", b"GET /healthz HTTP/1.1\r\n folded: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nX: a\nY: b\r\n\r\n", b"GET /healthz HTTP/1.1\r\nX: a\0b\r\n\r\n",
    b"GET /health z HTTP/1.1\r\n\r\n", "GET /é HTTP/1.1\r\n\r\n".encode(),
])
def test_malformed_heads_are_bad_requests(data):
    assert refused(data)[0] == 400


def test_other_http_versions_are_refused():
    assert refused(b"GET / HTTP/2.0\r\n\r\n") == (505, "http_version")


# -- properties ------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_nothing_but_the_framing_error(data):
    try:
        parse_request(data, LIMITS)
    except HTTPError as exc:
        assert exc.status in (400, 413, 431, 501, 505)


TOKEN_CHARS = "!#$%&'*+-.^_`|~abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
names = st.text(TOKEN_CHARS, min_size=1, max_size=12).filter(
    lambda n: n.lower() not in ("content-length", "transfer-encoding"))
values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=30)


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
       path=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=40).map(lambda p: "/" + p),
       headers=st.dictionaries(names.map(str.lower), values, max_size=8),
       body=st.binary(max_size=500), tail=st.binary(max_size=50))
def test_valid_requests_round_trip(method, path, headers, body, tail):
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in headers.items())
    data = (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
    request, used = parse_request(data + tail, LIMITS)
    assert (request.method, request.path, request.body, used) == (method, path, body, len(data))
    assert {k: v for k, v in request.headers.items() if k != "content-length"} == headers


# -- the connection server ---------------------------------------------------------

class App:
    """Echoes the body; refuses heads without the token ``secret`` as the worker does."""

    def __init__(self):
        self.bodies = []

    def check(self, head):
        if head.headers.get("x-token", "").encode("latin-1") != b"secret":
            return 401, {"error": {"code": "unauthorized", "message": "no"}}
        return None

    def __call__(self, request):
        self.bodies.append(request.body)
        return 200, {"got": len(request.body)}


@pytest.fixture
def served(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = str(tmp_path / "w.sock")
    sock.bind(path)
    sock.listen(64)
    app = App()
    server = Server(sock, app, threads=2, limits=LIMITS, idle_timeout=30.0, head_timeout=1.0, body_timeout=2.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path, app, server
    server.stop()
    thread.join(timeout=10)


def exchange(path: str, data: bytes, shut: bool = False) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return read_until_closed(s)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_keep_alive_and_pipelined_requests(served):
    path, app, _ = served
    one = post(b"abc", "Content-Length: 3", "X-Token: secret")
    last = post(b"de", "Content-Length: 2", "X-Token: secret", "Connection: close")
    answer = exchange(path, one + one + last)
    assert answer.count(b"HTTP/1.1 200 OK") == 3 and answer.endswith(b'{"got":2}')
    assert app.bodies == [b"abc", b"abc", b"de"]


def test_the_token_is_checked_before_the_body_is_read(served):
    path, app, _ = served
    # The body is announced but never sent: the refusal cannot have waited for it.
    answer = exchange(path, post(b"", "Content-Length: 900", "X-Token: wrong"))
    assert status_of(answer) == 401 and b"Connection: close" in answer
    non_ascii = "POST /infer HTTP/1.1\r\nX-Token: sécret\r\nContent-Length: 0\r\n\r\n".encode("utf-8")
    assert status_of(exchange(path, non_ascii)) == 401
    assert app.bodies == []


def test_refusals_reach_the_client_and_close(served):
    path, app, _ = served
    answer = exchange(path, post(b"5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked", "X-Token: secret"))
    assert status_of(answer) == 501 and json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"]
    assert status_of(exchange(path, post(b"", "Content-Length: -1", "X-Token: secret"))) == 400
    assert status_of(exchange(path, b"GET /" + b"a" * 3000)) == 431
    assert app.bodies == []


def test_a_short_body_is_no_request(served):
    path, app, _ = served
    assert exchange(path, post(b"12345", "Content-Length: 10", "X-Token: secret"), shut=True) == b""
    assert app.bodies == []


def test_idle_connections_hold_no_thread_and_stalled_heads_are_closed(served):
    path, app, server = served
    assert status_of(exchange(path, post(b"", "X-Token: secret", "Connection: close"))) == 200
    before = threading.active_count()
    idle = []
    for _ in range(100):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        idle.append(s)
    idle[0].sendall(b"GET /healthz HTTP/1.1\r\n")  # a head that never ends
    idle[0].settimeout(10)
    assert idle[0].recv(100) == b""  # closed after head_timeout
    assert threading.active_count() == before
    # The server still answers while 99 connections sit idle.
    answer = exchange(path, post(b"x", "Content-Length: 1", "X-Token: secret", "Connection: close"))
    assert status_of(answer) == 200
    for s in idle:
        s.close()
    assert wait_until(lambda: len(server.selector.get_map()) <= 2, timeout=10)


def test_a_served_connection_outlives_one_that_never_sent_a_request(served):
    """The gateway's pooled connection stays open while idle; a silent one is closed."""
    path, app, _ = served
    pooled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    pooled.connect(path)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(path)
    pooled.sendall(post(b"x", "Content-Length: 1", "X-Token: secret"))
    pooled.settimeout(10)
    assert status_of(pooled.recv(65536)) == 200
    silent.settimeout(10)
    assert silent.recv(100) == b""  # closed after head_timeout (1 s here)
    pooled.setblocking(False)
    with pytest.raises(BlockingIOError):  # still open: nothing to read, no end of stream
        pooled.recv(100)
    pooled.setblocking(True)
    pooled.sendall(post(b"yz", "Content-Length: 2", "X-Token: secret"))
    assert status_of(pooled.recv(65536)) == 200
    pooled.close()
    silent.close()
