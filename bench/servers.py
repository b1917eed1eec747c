"""The processes a bench row measures: a gateway (from this tree or another), the bare single hop.

Each is a subprocess on loopback, started on a free port and waited for
with a bounded poll, and stopped with SIGTERM (then SIGKILL past a grace).
A gateway from another source tree (``variant_tree``: ``git archive REF``
or this tree plus a patch) runs on the same interpreter with its own
PYTHONPATH, so the same bench compares two designs side by side.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from venvserve.system.processes import rss_mb

from . import load

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, method: str = "GET", payload=None, timeout: float = 600) -> dict:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as answer:
        return json.loads(answer.read())


def http_text(url: str, timeout: float = 30) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.read().decode()


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:])
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen, grace: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Gateway:
    """``venvserve serve`` in a subprocess, from this tree or from another source tree.

    ``extra`` are more serve flags; ``env`` overrides the environment (a PATH
    with a fake tool); ``lag_file`` runs it under bench/lagwrap.py, which
    writes the event loop's stalls there.
    """

    def __init__(self, name: str, work: Path, catalog: Path, data_dir: Path, src: Path | None = None,
                 extra: tuple = (), env: dict | None = None, lag_file: Path | None = None):
        self.name, self.work, self.catalog, self.data_dir, self.src = name, work, catalog, data_dir, src
        self.extra, self.env, self.lag_file = list(extra), env or {}, lag_file
        self.run_dir = work / f"run-{name}"
        self.log = work / f"gateway-{name}.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Gateway":
        self.port = free_port()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        env["XDG_RUNTIME_DIR"] = str(self.run_dir)
        if self.src:
            env["PYTHONPATH"] = f"{self.src}{os.pathsep}{self.src / 'worker_runtime'}"
        env.update(self.env)
        launcher = ["-m", "venvserve.cli"]
        if self.lag_file:
            env["BENCH_LAG_FILE"] = str(self.lag_file)
            launcher = [str(ROOT / "bench" / "lagwrap.py")]
        cmd = [sys.executable, *launcher, "serve", "--port", str(self.port),
               "--catalog", str(self.catalog), "--data-dir", str(self.data_dir),
               "--envs-dir", str(ROOT / "envs"), *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     cwd=self.work, env=env)
        wait_http(self.url + "/healthz", self.proc, self.log)
        return self

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)

    def rss(self) -> float | None:
        return rss_mb(self.proc.pid)

    def target(self) -> load.Target:
        return load.Target(port=self.port)

    def load_model(self, model: str) -> dict:
        return http_json(f"{self.url}/v1/models/{model}/load", "POST", timeout=900)

    def workers(self, model: str | None = None) -> list[dict]:
        return [w for w in http_json(self.url + "/v1/status")["workers"] if model is None or w["model"] == model]

    def metric(self, name: str, **labels) -> float:
        """The sum of one /metrics series over the samples whose labels include ``labels``."""
        total = 0.0
        for line in http_text(self.url + "/metrics").splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            series, _, label_text = head.partition("{")
            if series != name or any(f'{k}="{v}"' not in label_text for k, v in labels.items()):
                continue
            total += float(value)
        return total

    def socket_of(self, worker: dict) -> Path:
        found = sorted(self.run_dir.glob(f"venvserve-*/{self.proc.pid}*/w{worker['id']}.sock"))
        if not found:
            raise RuntimeError(f"no socket for worker {worker['id']} under {self.run_dir}")
        return found[0]


class Bare:
    """The single-hop limit: a bare FastAPI app (bench/bare_app.py) on uvicorn, uvloop + httptools, no access log."""

    name = "bare"

    def __init__(self, work: Path, app: str = "bench.bare_app:app"):
        self.work, self.app, self.log, self.proc, self.port = work, app, work / "bare.log", None, 0

    def start(self) -> "Bare":
        self.port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", self.app, "--port", str(self.port),
               "--no-access-log", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT), "BENCH_SPOOL": str(self.work)})
        wait_port(self.port, self.proc, self.log)  # no GET route: an open port means it is up
        return self

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)

    def target(self) -> load.Target:
        return load.Target(port=self.port)


def variant_tree(work: Path, name: str, ref: str | None = None, patch: Path | None = None) -> Path:
    """A source tree for a comparison gateway: ``git archive REF``, or this tree plus a patch."""
    dest = work / f"src-{name}"
    dest.mkdir(parents=True)
    if ref:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "venvserve",
                                  "worker_runtime"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        for part in ("venvserve", "worker_runtime"):
            shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["git", "apply", "-p1", str(Path(patch).resolve())], cwd=dest, check=True)
    return dest
