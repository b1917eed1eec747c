"""No client-chosen path is ever read, no name reaches the filesystem, loopback by default."""

import os
import shutil
import stat
import tempfile
from pathlib import Path

import httpx
import pytest

from support import ROOT, assert_error, raw_http

from venvserve_worker.backends.echo import EchoBackend
from venvserve_worker.server import Worker


# -- the public API refuses server-side paths ---------------------------------

@pytest.mark.parametrize("images", [["/etc/passwd"], "/etc/passwd", [], None])
def test_infer_refuses_the_reserved_images_field(ocr_server, images):
    r = ocr_server.client.post("/v1/models/echo/infer", json={"task": "ocr", "images": images})
    assert_error(r, 400, "reserved_field")
    # Not for an OCR model either.
    r = ocr_server.client.post("/v1/models/tesseract/infer", json={"task": "ocr", "images": ["/etc/passwd"]})
    assert_error(r, 400, "reserved_field")
    # The same request without the field is served.
    r = ocr_server.client.post("/v1/models/echo/infer", json={"task": "echo", "x": 1})
    assert r.status_code == 200 and r.json()["x"] == 1, r.text


# -- the worker refuses paths outside its spool dir ---------------------------

@pytest.fixture
def spool_worker(tmp_path):
    spool = tmp_path / "spool"
    (spool / "req1").mkdir(parents=True)
    inside = spool / "req1" / "page.png"
    inside.write_bytes(b"12345")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (tmp_path / "spool-evil").mkdir()
    (tmp_path / "spool-evil" / "x.png").write_bytes(b"x")
    (spool / "req1" / "link.png").symlink_to(outside)
    worker = Worker({"model": "echo", "input_dir": str(spool)}, EchoBackend(), 0.0)
    worker.backend.load({})
    return worker, spool, inside, outside


def test_worker_check_inputs_allows_only_files_under_its_spool(spool_worker):
    worker, spool, inside, outside = spool_worker
    assert worker.check_inputs({"images": [str(inside)]}) is None
    assert worker.check_inputs({"task": "ocr"}) is None  # no inputs at all
    refused = [
        "/etc/passwd",
        str(outside),
        str(spool / "req1" / ".." / ".." / "secret.txt"),  # dot-dot out of the spool
        str(spool / "req1" / "link.png"),  # a symlink inside pointing outside
        str(spool.parent / "spool-evil" / "x.png"),  # a sibling sharing the prefix
        str(spool),  # the spool dir itself is not a file in it
    ]
    for path in refused:
        status, body = worker.check_inputs({"images": [str(inside), path]})
        assert (status, body["error"]["code"]) == (403, "path_refused"), path
    for bad in ("/etc/passwd", [1], {"a": "b"}):
        status, body = worker.check_inputs({"images": bad})
        assert status in (400, 403), bad


def test_worker_without_spool_takes_no_input_files():
    worker = Worker({"model": "echo", "input_dir": None}, EchoBackend(), 0.0)
    status, body = worker.check_inputs({"images": ["/tmp/x.png"]})
    assert (status, body["error"]["code"]) == (403, "path_refused")


def test_worker_infer_route_refuses_before_the_backend_reads(spool_worker):
    """Through the worker's request handler: the echo backend would stat the file."""
    from venvserve_worker.http11 import Request

    worker, spool, inside, outside = spool_worker

    def call(payload):
        import json
        return worker(Request("POST", "/infer", {}, json.dumps(payload).encode()))

    status, body = call({"task": "ocr", "images": [str(outside)]})
    assert (status, body["error"]["code"]) == (403, "path_refused")
    assert "secret" not in str(body) and str(len("secret")) + " bytes" not in str(body)
    status, body = call({"task": "ocr", "images": [str(inside)]})
    assert status == 200 and body["pages"] == [{"page": 1, "text": "5 bytes"}], body


# -- names never reach the filesystem ------------------------------------------

@pytest.fixture
def decoy_server(server_factory, tmp_path):
    """Templates in tmp/tpl/envs; a decoy template one level up, at tmp/tpl/decoy.

    If an env name with ``../`` were joined to the templates dir, the decoy
    would be found and answered with 200.
    """
    envs = tmp_path / "tpl" / "envs"
    envs.mkdir(parents=True)
    shutil.copytree(ROOT / "envs" / "tesseract", envs / "tesseract")
    shutil.copytree(ROOT / "envs" / "tesseract", tmp_path / "tpl" / "decoy")
    catalog = [{"id": "echo", "architecture": "echo"}, {"id": "org/model", "architecture": "echo"}]
    return server_factory(catalog, envs_dir=envs)


def test_env_names_with_dot_dot_are_not_found(decoy_server, tmp_path):
    server = decoy_server
    # Sanity: the real template is found; the decoy is not a template name.
    assert server.client.get("/v1/envs/tesseract").status_code == 200
    assert_error(server.client.get("/v1/envs/decoy"), 404)
    for name in ("..%2Fdecoy", "..%2F..%2Ftpl%2Fdecoy", "..%2F..%2Fetc", "..", ".", "%2E%2E", ".venv-x",
                 "tesseract%2F..%2F..%2Fdecoy", "%2Fetc"):
        for method in ("GET", "POST", "DELETE"):
            suffix = "/install" if method == "POST" else ""
            status, body = raw_http(server.url, f"{method} /v1/envs/{name}{suffix} HTTP/1.1\r\n"
                                    f"Host: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            assert status in (404, 405), (method, name, status, body)
            if status == 404:
                assert b'"error"' in body, body
    # Nothing was built or created anywhere for those names.
    assert sorted(p.name for p in (tmp_path / "tpl").iterdir()) == ["decoy", "envs"]
    assert not (server.data_dir / "envs").exists() or not any((server.data_dir / "envs").iterdir())
    assert not (server.data_dir / "decoy").exists() and not (tmp_path / "decoy").exists()
    listed = [e["name"] for e in server.client.get("/v1/envs").json()["data"]]
    assert listed == ["tesseract"]


def test_model_ids_with_dot_dot_are_not_found(decoy_server):
    server = decoy_server
    for path in ("/v1/models/../x/infer", "/v1/models/..%2Fx/infer", "/v1/models/org/../echo/infer",
                 "/v1/models/..%2F..%2Fetc%2Fpasswd/infer", "/v1/models/%2E%2E/echo/infer"):
        status, body = raw_http(server.url, f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                f"Content-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode())
        assert status == 404, (path, status, body)
        assert b'"error"' in body, body
    for path in ("/v1/models/../echo", "/v1/models/..%2Fecho", "/v1/models/org/../../etc/passwd"):
        status, body = raw_http(server.url, f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        assert status == 404, (path, status, body)
    # An id with a '/' (allowed) still works, and nothing was spawned for the others.
    r = server.client.post("/v1/models/org/model/infer", json={"ok": True})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert {w["model"] for w in server.workers()} == {"org/model"}


# -- network and file permissions -----------------------------------------------

def listening_addresses(pid: int, port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of sockets listening on ``port``."""
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            addr, hexport = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                found.add(addr)
    return found


def test_binds_loopback_by_default(ocr_server):
    from venvserve.settings import Settings

    assert Settings().host == "127.0.0.1"
    port = int(ocr_server.url.rsplit(":", 1)[1])
    # start_server passes no --host: the default is in use.
    assert listening_addresses(ocr_server.pid, port) == {"0100007F"}  # 127.0.0.1, no wildcard, no IPv6


def test_private_dirs_are_0700(ocr_server):
    ocr_server.client.post("/v1/models/echo/load")
    # One folder per gateway instance, named <pid>-<random>.
    [spool] = (ocr_server.data_dir / "spool").glob(f"{ocr_server.pid}-*")
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o700
    runtime_base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"venvserve-{os.getuid()}"
    assert stat.S_IMODE(os.stat(runtime_base).st_mode) == 0o700
    [run_dir] = runtime_base.glob(f"{ocr_server.pid}-*")
    assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700
    sockets = [p for p in run_dir.iterdir() if stat.S_ISSOCK(p.lstat().st_mode)]
    assert sockets, "no worker socket in the runtime dir"


def test_a_tcp_worker_answers_only_the_gateway_that_holds_its_token(server_factory):
    server = server_factory([{"id": "echo", "architecture": "echo"}], args=("--worker-transport", "tcp"))
    answer = server.client.post("/v1/models/echo/infer", json={"via": "gateway"})
    assert answer.status_code == 200 and answer.json()["via"] == "gateway"
    [worker] = server.workers()
    host, port = worker["address"].rsplit(":", 1)
    assert host == "127.0.0.1"
    for headers in ({}, {"X-Venvserve-Token": "guess"}):
        direct = httpx.post(f"http://127.0.0.1:{port}/infer", json={"via": "someone else"}, headers=headers)
        assert direct.status_code == 401
        assert direct.json()["error"]["code"] == "unauthorized"
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 401
    assert server.workers()[0]["requests"] == 1  # nothing reached the backend but the gateway's request


# -- Host and Origin: no DNS rebinding, no cross-site writes ---------------------------------

def test_a_host_name_this_server_does_not_answer_to_is_403(server_factory):
    server = server_factory([{"id": "echo", "architecture": "echo"}],
                            env={"VENVSERVE_ALLOWED_HOSTS": "ocr.example.org,*.lan.example"})
    port = server.url.rsplit(":", 1)[1]
    for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "lan.example"):
        r = httpx.get(server.url + "/healthz", headers={"Host": f"{host}:{port}"})
        assert_error(r, 403, "forbidden_host")
    for host in ("127.0.0.1", "localhost", "[::1]", "ocr.example.org", "a.lan.example", "LOCALHOST"):
        r = httpx.get(server.url + "/v1/models", headers={"Host": f"{host}:{port}"})
        assert r.status_code == 200, (host, r.text)


def test_a_cross_site_origin_may_not_change_state(server_factory):
    server = server_factory([{"id": "echo", "architecture": "echo"}],
                            env={"VENVSERVE_ALLOWED_ORIGINS": "https://app.example.org"})
    own = server.url  # http://127.0.0.1:PORT: the web page's own origin
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1", "http://localhost"):
        assert_error(httpx.post(server.url + "/v1/models/echo/load", headers={"Origin": origin}),
                     403, "forbidden_origin")
        assert_error(httpx.post(server.url + "/v1/models/echo/infer", json={}, headers={"Origin": origin}),
                     403, "forbidden_origin")
    assert server.workers() == []  # nothing was loaded by the refused requests
    # Reading is not a write; the page's own origin, an allowed one and no Origin (curl) may write.
    assert httpx.get(server.url + "/v1/models", headers={"Origin": "https://evil.example"}).status_code == 200
    for headers in ({"Origin": own}, {"Origin": "https://app.example.org"}, {}):
        r = httpx.post(server.url + "/v1/models/echo/infer", json={"ok": 1}, headers=headers)
        assert r.status_code == 200 and r.json()["ok"] == 1, (headers, r.text)


# -- what a client sees of a failure, and what the log keeps ------------------------------------

def test_an_unexpected_error_shows_no_traceback_or_path(tmp_path, caplog):
    from fastapi.testclient import TestClient

    from venvserve.api.app import create_app
    from venvserve.settings import Settings

    app = create_app(Settings.load(data_dir=tmp_path / "data"))

    @app.get("/v1/boom")
    async def boom():
        raise RuntimeError(f"failed to open {tmp_path}/secret.db")

    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client:
        r = client.get("/v1/boom")
    error = assert_error(r, 500, "internal_error")
    assert str(tmp_path) not in r.text and "RuntimeError" not in r.text and "Traceback" not in r.text
    request_id = error["message"].rsplit("request id ", 1)[1].rstrip(")")
    logged = [rec for rec in caplog.records if request_id in rec.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the server log, under that id


def test_a_newline_in_the_path_cannot_forge_a_log_line(server_factory):
    server = server_factory([{"id": "echo", "architecture": "echo"}])
    forged = "GET /forged 200 total=1.0ms"
    status, _ = raw_http(server.url, b"POST /x%0a" + forged.replace(" ", "%20").encode()
                         + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert status == 404
    from support import wait_until
    wait_until(lambda: "/x\\n" in server.output())
    assert not any(line.lstrip().startswith(forged) or forged in line.split("INFO")[0]
                   for line in server.output().splitlines())
    assert all("GET /forged" not in line or "/x\\n" in line for line in server.output().splitlines())


# -- a model's worker output: the admin's to read --------------------------------------------------

def test_model_logs_are_admin_only_and_follow_live(server_factory):
    import json

    admin = {"Authorization": "Bearer admin-key"}
    server = server_factory([{"id": "echo", "architecture": "echo"}], env={"VENVSERVE_ADMIN_KEY": "admin-key"})
    assert server.client.post("/v1/models/echo/load", headers=admin).status_code == 200
    assert_error(server.client.get("/v1/models/echo/logs"), 401, "unauthorized")
    assert server.client.post("/v1/models/echo/infer", json={"crash": True}).status_code == 502
    from support import wait_until

    def lines():
        r = server.client.get("/v1/models/echo/logs?n=50", headers=admin)
        assert r.status_code == 200 and r.json()["model"] == "echo", r.text
        return [x for x in r.json()["lines"] if "crashing as asked" in x["line"]]

    [line] = wait_until(lines)
    assert isinstance(line["t"], float) and isinstance(line["pid"], int)
    with httpx.stream("GET", server.url + "/v1/models/echo/logs?follow=true&n=5", headers=admin,
                      timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for text in stream.iter_lines():
            if text.startswith("data: ") and "crashing as asked" in text:
                assert json.loads(text[6:])["pid"] == line["pid"]
                break
