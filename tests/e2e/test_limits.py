"""Limits on everything a client sends: each answered as a JSON 4xx, and the server keeps serving."""

import base64
import json
import socket
import struct
import time
import zlib

import httpx
import pytest

from support import assert_error, start_server, wait_until

CATALOG = [{"id": "echo", "architecture": "echo"}]
LIMITS = {
    "VENVSERVE_HEADER_TIMEOUT_S": "1", "VENVSERVE_MAX_HEADER_KB": "8", "VENVSERVE_MAX_JSON_MB": "1",
    "VENVSERVE_MAX_UPLOAD_MB": "1", "VENVSERVE_MAX_FORM_FIELDS": "8", "VENVSERVE_MAX_FIELD_KB": "4",
    "VENVSERVE_MAX_FILES": "2", "VENVSERVE_MAX_IMAGES_PER_REQUEST": "2", "VENVSERVE_MAX_JSON_DEPTH": "32",
}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("limits"), CATALOG, env=LIMITS)
    yield server
    server.stop()


def exchange(server, data: bytes, timeout: float = 10) -> tuple[float, bytes]:
    """Send bytes, read until the server closes; (seconds, everything it answered)."""
    host, port = server.url.split("//", 1)[1].rsplit(":", 1)
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return time.monotonic() - t0, out


def status_and_error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), answer[:300]
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]


def still_serving(server) -> None:
    r = server.client.post("/v1/models/echo/infer", json={"after": "a bad request"})
    assert r.status_code == 200 and r.json()["after"] == "a bad request", r.text


# -- the request head ------------------------------------------------------------------

@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",  # one huge line
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + b"X-A: b\r\n" * 20_000 + b"\r\n",  # many headers
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",  # just over 8 KB
], ids=["one_huge_line", "many_headers", "just_over"])
def test_a_head_over_the_limit_is_431(server, head):
    _, answer = exchange(server, head)
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (431, "headers_too_large")
    still_serving(server)


def test_a_head_that_stops_arriving_is_408_and_an_idle_connection_is_closed(server):
    seconds, answer = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: local")
    status, error = status_and_error(answer)
    assert (status, error["code"]) == (408, "request_timeout")
    assert seconds < 8
    seconds, answer = exchange(server, b"")
    assert answer == b"" and seconds < 8


def test_a_body_that_stops_arriving_does_not_hold_the_connection(server):
    for framing in (b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{\"a\":",
                    b"Content-Length: 1000\r\n\r\n{\"a\":"):
        seconds, answer = exchange(server, b"POST /v1/models/echo/infer HTTP/1.1\r\nHost: localhost\r\n"
                                   b"Content-Type: application/json\r\n" + framing)
        status, error = status_and_error(answer)
        assert (status, error["code"]) == (408, "request_timeout"), answer
        assert seconds < 8
    still_serving(server)


@pytest.mark.parametrize("data", [
    b"\x00\x01\x02 not http\r\n\r\n",
    b"POST /v1/models/echo/infer HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n",
])
def test_malformed_http_is_a_json_400(server, data):
    _, answer = exchange(server, data)
    status, error = status_and_error(answer)
    assert status == 400, answer


# -- JSON bodies -------------------------------------------------------------------------

def deep(n: int) -> str:
    return "[" * n + "]" * n


def test_json_bodies_over_the_size_limit_are_413(server):
    r = server.client.post("/v1/models/echo/infer", content=b'{"x": "' + b"a" * (2 * 2**20) + b'"}', headers=JSON)
    assert_error(r, 413, "request_too_large")
    # A declared length over the limit is refused before the body is sent.
    _, answer = exchange(server, b"POST /v1/models/echo/infer HTTP/1.1\r\nHost: localhost\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{")
    assert status_and_error(answer)[0] == 413
    still_serving(server)


@pytest.mark.parametrize("body", [
    '{"a": ' + deep(30_000) + "}",
    '{"a": ' + deep(33) + "}",
    '{"a": "' + "[" * 100 + '", "b": ' + deep(40) + "}",  # brackets in strings do not hide the real ones
])
def test_json_nested_too_deep_is_400_on_every_json_route(server, body):
    assert_error(server.client.post("/v1/models/echo/infer", content=body, headers=JSON), 400, "json_too_deep")
    chat = '{"model": "echo", "messages": [], "x": ' + body + "}"
    assert server.client.post("/v1/chat/completions", content=chat, headers=JSON).status_code == 400
    r = server.client.post("/v1/ocr", files={"file": ("x.png", b"\x89PNG\r\n\x1a\n")},
                           data={"model": "echo", "options": body[:3500]})
    assert r.status_code in (400, 413), r.text
    still_serving(server)


def test_json_within_the_depth_limit_is_relayed(server):
    body = {"a": json.loads(deep(30))}
    r = server.client.post("/v1/models/echo/infer", json=body)
    assert r.status_code == 200 and r.json()["a"] == body["a"], r.text


@pytest.mark.parametrize("body, code", [
    (b"[1, 2]", "invalid_json"),
    (b'"text"', "invalid_json"),
    (b'{"\\u0069mages": ["/etc/passwd"]}', "reserved_field"),  # an escaped key is still the key
    (b'{"images": 1}', "reserved_field"),
])
def test_infer_bodies_the_gateway_refuses(server, body, code):
    assert_error(server.client.post("/v1/models/echo/infer", content=body, headers=JSON), 400, code)


def test_infer_answers_bad_json_with_a_json_400(server):
    r = server.client.post("/v1/models/echo/infer", content=b"{not json", headers=JSON)
    assert r.status_code == 400 and "error" in r.json(), r.text


# -- chat --------------------------------------------------------------------------------------

PNG_1PX = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000" "1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea7d6a4"
    "0000000049454e44ae426082")).decode()


def chat(server, **body):
    return server.client.post("/v1/chat/completions", json=body)


def test_chat_fields_of_the_wrong_type_are_400(server):
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}}
    messages = [{"role": "user", "content": [image]}]
    for body in ({"model": [None, None], "messages": messages}, {"model": {"a": 1}, "messages": messages},
                 {"model": "echo", "messages": messages, "stream": True, "stream_options": [1]},
                 {"model": "echo", "messages": "hello"}, {"model": "echo", "messages": [1]}):
        r = chat(server, **body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"


def test_chat_takes_a_bounded_number_of_images(server):
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}}
    r = chat(server, model="echo", messages=[{"role": "user", "content": [image] * 3}])
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_images", r.text


def huge_png(side: int = 60_000) -> bytes:
    """A valid 1-bit PNG of side × side white pixels: a few hundred KB that decode to gigabytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def test_a_decompression_bomb_png_is_413(server):
    png = huge_png()
    assert len(png) < 1 * 2**20
    r = server.client.post("/v1/ocr", files={"file": ("bomb.png", png)}, data={"model": "echo"})
    assert_error(r, 413, "image_too_large")
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    r = chat(server, model="echo", messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}])
    assert r.status_code == 413 and r.json()["error"]["code"] == "image_too_large", r.text
    still_serving(server)


# -- multipart ---------------------------------------------------------------------------------

def multipart(parts: list[bytes], boundary: bytes = b"xyz") -> bytes:
    return b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + boundary + b"--\r\n"


def post_multipart(server, body: bytes):
    return server.client.post("/v1/ocr", content=body, headers={"content-type": "multipart/form-data; boundary=xyz"})


def test_multipart_limits(server):
    file_part = b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG'
    fields = [b'Content-Disposition: form-data; name="f%d"\r\n\r\nx' % i for i in range(9)]
    assert_error(post_multipart(server, multipart(fields + [file_part])), 400, "too_many_fields")
    big_field = b'Content-Disposition: form-data; name="options"\r\n\r\n' + b"x" * 5000
    assert_error(post_multipart(server, multipart([big_field, file_part])), 413, "field_too_large")
    files = [file_part.replace(b'name="file"', b'name="other%d"' % i) for i in range(3)]
    assert_error(post_multipart(server, multipart(files + [file_part])), 400, "too_many_files")
    # Fields count against the one body limit too.
    many = [b'Content-Disposition: form-data; name="f%d"\r\n\r\n' % i + b"x" * 3000 for i in range(8)]
    r = post_multipart(server, multipart(many + [file_part + b"x" * (1024 * 1024 - 20_000)]))
    assert r.status_code == 413, r.text
    still_serving(server)


def test_malformed_multipart_is_400_not_a_reset(server):
    no_colon = b"Content-Disposition form-data\r\n\r\nx"
    assert_error(post_multipart(server, multipart([no_colon])), 400)
    ten_mb_name = b'Content-Disposition: form-data; name="' + b"n" * (10 * 2**20) + b'"\r\n\r\nx'
    r = post_multipart(server, multipart([ten_mb_name]))
    assert r.status_code in (400, 413), r.text
    assert "error" in r.json()
    still_serving(server)


# -- names of any length -----------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/envs/{long}/install"), ("GET", "/v1/envs/{long}"), ("DELETE", "/v1/envs/{long}"),
    ("GET", "/v1/envs/{long}/log/stream"), ("GET", "/v1/models/{long}"), ("POST", "/v1/models/{long}/load"),
    ("POST", "/v1/models/{long}/infer"), ("GET", "/v1/models/{long}/logs"),
])
def test_names_of_any_length_are_404_without_a_server_path(server, method, path):
    for long in ("a" * 300, "a" * 5000, "a/" * 200 + "b"):
        r = server.client.request(method, path.format(long=long), json={})
        error = assert_error(r, 404)
        assert str(server.data_dir) not in error["message"] and "/tmp" not in json.dumps(error)


# -- nothing a client sends is a 500 -----------------------------------------------------------

def test_the_server_log_has_no_unexpected_errors(server):
    wait_until(lambda: server.proc.poll() is None)
    assert "internal_error" not in server.output() and "Traceback" not in server.output(), server.output()[-3000:]


# -- a client that leaves ------------------------------------------------------------------------

def test_a_queued_infer_whose_client_left_never_reaches_the_worker(server_factory):
    server = server_factory([{"id": "slow", "architecture": "echo", "max_concurrency": 1}])
    assert server.client.post("/v1/models/slow/load").status_code == 200
    import threading

    busy = threading.Thread(target=lambda: httpx.post(server.url + "/v1/models/slow/infer",
                                                      json={"sleep_s": 3}, timeout=30))
    busy.start()
    wait_until(lambda: server.workers()[0]["in_flight"] == 1)
    with pytest.raises(httpx.ReadTimeout):  # queued behind the sleeper; this client gives up
        httpx.post(server.url + "/v1/models/slow/infer", json={"left": True}, timeout=0.5)
    busy.join()
    # A request queued after it: a kept request would have run before this one (the queue is FIFO).
    assert server.client.post("/v1/models/slow/infer", json={"after": True}).status_code == 200
    assert server.workers()[0]["requests"] == 2, server.workers()
