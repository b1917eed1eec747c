"""Helpers shared by the tests: real servers in subprocesses, rendered images, CER, raw HTTP.

The tests put this folder on sys.path (pyproject's pytest ``pythonpath``), so
any test module can ``from support import ...``.
"""

import contextlib
import json
import os
import signal
import socket
import threading
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
ARTIFACTS = ROOT / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`venvserve serve` in a subprocess, on loopback, with its own catalog and data dir."""

    def __init__(self, proc: subprocess.Popen, url: str, data_dir: Path, log: Path):
        self.proc = proc
        self.url = url
        self.data_dir = data_dir
        self.log = log
        self.client = httpx.Client(base_url=url, timeout=120)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> list[dict]:
        return self.client.get("/v1/status").json()["workers"]

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(tmp: Path, catalog: list[dict] | Path | None = None, data_dir: Path | None = None,
                 args: tuple = (), env: dict | None = None, envs_dir: Path | None = None) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    if isinstance(catalog, list):
        path = tmp / "models.json"
        path.write_text(json.dumps(catalog))
        catalog = path
    catalog = catalog or ROOT / "models.json"
    data_dir = data_dir or tmp / "data"
    port = free_port()
    log = tmp / f"server-{port}.log"
    cmd = [sys.executable, "-m", "venvserve.cli", "serve", "--port", str(port), "--catalog", str(catalog),
           "--data-dir", str(data_dir), "--envs-dir", str(envs_dir or ROOT / "envs"), *args]
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=tmp,
                            env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Server(proc, url, data_dir, log)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start within 30s:\n{log.read_text()}")


def render_lines(lines: list[str], size: int = 40, path: Path | None = None, fmt: str = "PNG",
                 width: int | None = None):
    """Black text on white, one line per entry, in DejaVu Sans."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, size)
    widths = [font.getbbox(line)[2] for line in lines]
    w = width or max(widths) + 2 * size
    h = int(len(lines) * size * 1.8 + 2 * size)
    image = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size + i * size * 1.8), line, fill="black", font=font)
    if path:
        image.save(path, format=fmt)
    return image


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, the textbook way."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(expected: str, got: str) -> float:
    """Character error rate: Levenshtein distance over the expected length."""
    return edit_distance(expected, got) / max(1, len(expected))


class Highest:
    """Samples ``measure()`` in a thread for as long as the ``with`` block runs: ``most`` is the
    highest value seen (a process's memory peak, the most workers alive at once)."""

    def __init__(self, measure, interval: float = 0.01, ignore: tuple = ()):
        self.measure, self.interval, self.ignore = measure, interval, ignore
        self.most, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(self.interval):
            try:
                self.most = max(self.most, self.measure())
            except self.ignore:
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns a truthy value; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it holds no memory.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def image_bytes(image, fmt: str = "PNG", **save_args) -> bytes:
    """Encode a PIL image in memory (PNG, JPEG, GIF, PDF...)."""
    import io

    buf = io.BytesIO()
    image.save(buf, format=fmt, **save_args)
    return buf.getvalue()


def normalise_lines(text: str) -> str:
    """Collapse each run of spaces/tabs to one space, strip lines, drop empty ones.

    Line order and line breaks still count; only the amount of whitespace does not.
    """
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The response is a JSON error ``{"error": {"code", "message"[, "hint"]}}`` with this status."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "hint"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    if code is not None:
        assert error["code"] == code, error
    return error


def read_until_closed(sock: socket.socket) -> bytes:
    """Every byte the peer sends until it closes the connection."""
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def raw_http(url: str, request: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """Send bytes as they are (no client-side path normalisation); answer (status, body)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return status, body
