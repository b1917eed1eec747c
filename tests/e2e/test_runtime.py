"""The worker runtime is stdlib-only and runs on every Python from 3.9 on."""

import ast
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT, read_until_closed, wait_until

RUNTIME = ROOT / "worker_runtime"
PACKAGE = RUNTIME / "venvserve_worker"


def module_level_imports(tree: ast.Module) -> list[tuple[int, str, int]]:
    """(line, module, level) of imports run at import time: module body, and the bodies
    of top-level if/try/with blocks and classes; not inside functions."""
    found = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, alias.name, 0) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.append((node.lineno, node.module or "", node.level))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            else:
                for name in ("body", "orelse", "finalbody", "handlers"):
                    visit(getattr(node, name, []) or [])

    visit(tree.body)
    return found


def runtime_files() -> list[Path]:
    files = sorted(PACKAGE.glob("*.py")) + sorted((PACKAGE / "backends").glob("*.py"))
    assert len(files) >= 8, files  # server, protocol, http11, lifeline, backends...
    return files


def test_runtime_imports_only_the_standard_library():
    foreign = []
    for path in runtime_files():
        for line, module, level in module_level_imports(ast.parse(path.read_text(), str(path))):
            top = module.split(".")[0]
            if level > 0 or top == "venvserve_worker" or top in sys.stdlib_module_names:
                continue
            foreign.append(f"{path.relative_to(ROOT)}:{line}: import {module}")
    assert not foreign, "the worker runtime imports outside the standard library:\n" + "\n".join(foreign)


def test_the_import_walker_sees_what_it_must():
    """The check above is only as good as its walker: it finds module-level imports
    in if/try blocks and classes, and skips function bodies."""
    tree = ast.parse(
        "import os\nfrom . import x\ntry:\n    import numpy\nexcept ImportError:\n    import json\n"
        "if True:\n    import torch\nclass A:\n    import cv2\n"
        "def f():\n    import onnxruntime\n")
    names = [m for _, m, _ in module_level_imports(tree)]
    assert names == ["os", "", "numpy", "json", "torch", "cv2"]


def test_backends_import_their_engines_lazily():
    """Every runtime module imports in a bare interpreter (-S: no site-packages at all)."""
    modules = ["venvserve_worker." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
               for p in runtime_files() if p.name not in ("__main__.py",)]
    modules = [m.replace(".__init__", "") for m in modules]
    code = "import importlib, sys\nfor m in %r: importlib.import_module(m)\n" \
           "bad = {'numpy', 'cv2', 'onnxruntime', 'torch', 'PIL', 'rapidocr', 'pytesseract'} & set(sys.modules)\n" \
           "assert not bad, bad\n" % modules
    proc = subprocess.run([sys.executable, "-S", "-c", code], env={"PYTHONPATH": str(RUNTIME)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# -- the echo worker under old and new interpreters ----------------------------

def find_python(version: str) -> str | None:
    """An interpreter of this minor version on this machine: uv's finder, then pyenv's folders."""
    candidates = []
    uv = shutil.which("uv")
    try:
        from uv import find_uv_bin

        uv = find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    if uv:
        proc = subprocess.run([uv, "python", "find", "--no-project", version], capture_output=True,
                              text=True, timeout=30)
        if proc.returncode == 0 and proc.stdout.strip():
            candidates.append(proc.stdout.strip().splitlines()[-1])
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        try:
            out = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return candidate
    return None


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("worker", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def call(conn, method: str, path: str, payload=None) -> tuple[int, dict]:
    body = json.dumps(payload).encode() if payload is not None else None
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def start_worker(python: str, tmp_path: Path, **config):
    """The runtime started the way the supervisor starts it, minus the supervisor:
    config in $VENVSERVE_WORKER_CONFIG, a ready pipe, stdin as the lifeline.
    ``-S``: no site-packages at all, so only the stdlib and the runtime are importable."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    sock = tmp_path / "w.sock"
    read_fd, write_fd = os.pipe()
    config = {"model": "echo", "architecture": "echo", "options": {}, "max_concurrency": 1,
              "socket": str(sock), "ready_fd": write_fd, "parent_pid": os.getpid(),
              "input_dir": str(spool), **config}
    env = {"PYTHONPATH": str(RUNTIME), "VENVSERVE_WORKER_CONFIG": json.dumps(config), "PATH": os.defpath}
    proc = subprocess.Popen([python, "-S", "-m", "venvserve_worker"], env=env, pass_fds=(write_fd,),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        line = pipe.readline().decode()
    if not line.startswith("ready "):
        proc.kill()
        raise AssertionError(f"worker did not get ready: {line!r}\n{proc.communicate(timeout=10)[0].decode()}")
    return proc, json.loads(line[len("ready "):]), sock, spool


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_echo_worker_runs_on_python(version, tmp_path):
    python = find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine (uv python find {version} found none)")
    proc, ready, sock, spool = start_worker(python, tmp_path)
    try:
        assert ready["pid"] == proc.pid
        assert ready["python"]["version"].startswith(version + "."), ready
        assert ready["model"] == "echo"
        conn = UnixHTTPConnection(str(sock))
        assert call(conn, "GET", "/healthz") == (200, {"status": "ok", "model": "echo", "ready": True})
        # Keep-alive: several requests on the one connection.
        status, body = call(conn, "POST", "/infer", {"hello": [1, 2], "packages": ["pip", "no-such-dist"]})
        assert status == 200, body
        assert body["hello"] == [1, 2] and body["pid"] == proc.pid
        assert body["python"]["version"].startswith(version + ".")
        assert body["packages"]["no-such-dist"] is None
        status, info = call(conn, "GET", "/info")
        assert status == 200 and info["pid"] == proc.pid and info["requests"] == 1
        # A backend error is JSON, and the worker keeps serving.
        status, body = call(conn, "POST", "/infer", {"raise": "boom"})
        assert status == 500 and body["error"]["code"] == "backend_error" and "boom" in body["error"]["message"]
        # Paths outside the spool are refused by the worker itself.
        status, body = call(conn, "POST", "/infer", {"task": "ocr", "images": ["/etc/passwd"]})
        assert (status, body["error"]["code"]) == (403, "path_refused")
        (spool / "p.png").write_bytes(b"abc")
        status, body = call(conn, "POST", "/infer", {"task": "ocr", "images": [str(spool / "p.png")]})
        assert status == 200 and body["pages"] == [{"page": 1, "text": "3 bytes"}]
        status, body = call(conn, "GET", "/nope")
        assert status == 404 and body["error"]["code"] == "not_found"
        conn.close()
        proc.stdin.close()  # the lifeline: the "gateway" is gone
        assert proc.wait(timeout=15) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_worker_exits_when_its_lifeline_closes(tmp_path):
    """stdin is the gateway's pipe: EOF (the gateway is gone) ends the worker."""
    proc, ready, sock, spool = start_worker(sys.executable, tmp_path)
    try:
        proc.stdin.close()
        assert proc.wait(timeout=15) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def boot_failure(tmp_path, architecture, options=None):
    """(exit status, output) of a worker that cannot boot; nothing may reach its ready pipe."""
    read_fd, write_fd = os.pipe()
    config = {"model": "broken", "architecture": architecture, "options": options or {},
              "socket": str(tmp_path / "s"), "ready_fd": write_fd, "parent_pid": os.getpid()}
    proc = subprocess.Popen([sys.executable, "-S", "-m", "venvserve_worker"], pass_fds=(write_fd,),
                            env={"PYTHONPATH": str(RUNTIME), "VENVSERVE_WORKER_CONFIG": json.dumps(config)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        assert pipe.read() == b""
    out = proc.communicate(timeout=30)[0].decode()
    return proc.returncode, out


@pytest.mark.parametrize("architecture, options, reason", [
    ("no_such_module:Nope", {}, "module 'no_such_module' is not installed"),
    ("venvserve_worker.backends.echo:Nope", {}, "has no backend class 'Nope'"),
    ("not-an-architecture", {}, "neither built in"),
    ("echo", {"fail_load": "on purpose"}, "RuntimeError: echo: fail_load was set: on purpose"),
    ("echo", {"load_s": "soon"}, "option 'load_s' must be a number"),
])
def test_worker_that_cannot_boot_says_why_in_its_last_line(tmp_path, architecture, options, reason):
    from venvserve_worker import protocol

    status, out = boot_failure(tmp_path, architecture, options)
    assert status == protocol.EXIT_BOOT_ERROR, out
    last = out.strip().splitlines()[-1]
    assert last.startswith(protocol.BOOT_FAILURE_PREFIX) and reason in last, out


def test_sigterm_ends_a_worker_at_once_even_mid_request(tmp_path):
    """The gateway drains a worker before it signals; a SIGTERM it sends without draining
    (a hung request) must not wait for that request."""
    proc, ready, sock, spool = start_worker(sys.executable, tmp_path)
    try:
        conn = UnixHTTPConnection(str(sock))
        conn.request("POST", "/infer", body=json.dumps({"hang": True}).encode())
        idle = UnixHTTPConnection(str(sock))
        assert wait_until(lambda: call(idle, "GET", "/info")[1]["in_flight"] == 1, timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(data)
        return read_until_closed(s)


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def test_tcp_worker_checks_the_token_first_and_idles_without_threads(tmp_path):
    proc, ready, sock, spool = start_worker(sys.executable, tmp_path, socket=None, token="s3cret",
                                            max_concurrency=2)
    port = ready["port"]
    try:
        # 300 MB announced, none sent: refused at once, from the head alone.
        answer = raw(port, b"POST /infer HTTP/1.1\r\nX-Venvserve-Token: nope\r\nContent-Length: 300000000\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 401 ") or answer.startswith(b"HTTP/1.1 413 "), answer
        answer = raw(port, b"POST /infer HTTP/1.1\r\nX-Venvserve-Token: nope\r\nContent-Length: 9\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 401 "), answer
        answer = raw(port, "GET /healthz HTTP/1.1\r\nX-Venvserve-Token: sécret\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 401 "), answer
        answer = raw(port, b"POST /infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 501 "), answer
        good = b"GET /healthz HTTP/1.1\r\nX-Venvserve-Token: s3cret\r\nConnection: close\r\n\r\n"
        assert raw(port, good).startswith(b"HTTP/1.1 200 ")
        baseline = threads_of(proc.pid)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(200)]
        assert raw(port, good).startswith(b"HTTP/1.1 200 ")  # served while 200 connections idle
        assert threads_of(proc.pid) == baseline
        for s in idle:
            s.close()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs the tesseract binary")
def test_tesseract_reads_the_numbers_of_a_200_dpi_table(tmp_path):
    """10 pt type at 200 dpi, the resolution stored in the file: the cells tesseract misread
    when it had to guess the resolution of a re-encoded copy (1.0 -> 0, 14 -> 4)."""
    from support import render_lines
    from venvserve_worker.backends.tesseract import TesseractBackend

    rows = ["Item   Ratio   Count", "alpha   1.0   14", "beta   1.3   27", "gamma   1.7   140",
            "list follow 0.25 3.5"]
    path = tmp_path / "table.png"
    render_lines(rows, size=28).save(path, dpi=(200, 200))
    backend = TesseractBackend()
    backend.load({})
    text = backend.infer({"task": "ocr", "images": [str(path)]})["pages"][0]["text"]
    assert [line.split() for line in text.splitlines()] == [row.split() for row in rows], text
