"""venvserve's benchmark: one command, one table, ratios measured side by side.

    python -m bench                      # the full run (~3-5 minutes), table + bench/results/*.json
    python -m bench --rows 1,2,3,8       # the gateway rows only (~1 minute)
    python -m bench --compare REF        # also run a gateway from git REF beside this tree (rows 1-3, 8)
    python -m bench --patch FILE.diff    # ... and one from this tree with FILE applied (a proposal)
    python -m bench --smoke              # a few iterations of the cheap rows (the test suite runs this)

Everything runs on this machine, on loopback and Unix sockets, with one load
generator (bench/load.py, a bounded asyncio client over raw sockets) for every
row; wrk, when installed, cross-checks row 1. Every figure is compared with
its baseline in the same run, in interleaved rounds after a warm-up, and
reported as medians: on a small shared machine absolute numbers swing 2x
between runs, ratios measured side by side do not.
"""

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from venvserve.system.processes import rss_mb

from . import load

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
ECHO_BODY = json.dumps({"text": "hello world, a one hundred byte JSON request body for the venvserve bench"},
                       separators=(",", ":")).encode()
OCR_LINES = ["Invoice 2024-0815 from venvserve", "Each model runs in its own environment",
             "Total due: 1,234.56 EUR", "The quick brown fox jumps over the lazy dog",
             "Workers speak HTTP over a Unix socket", "Pages are fanned out across replicas"]


# -- small helpers ----------------------------------------------------------------

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


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


def stop_process(proc: subprocess.Popen, grace: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def machine() -> dict:
    info = {"python": platform.python_version(), "kernel": platform.release(), "cores": os.cpu_count()}
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
    versions = {}
    from importlib import metadata
    for dist in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic", "python-multipart",
                 "pillow", "pypdfium2", "uv"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    info["packages"] = versions
    info["loadavg_start"] = os.getloadavg()
    return info


# -- the processes under test --------------------------------------------------------

class Gateway:
    """``venvserve serve`` in a subprocess, from this tree or from another source tree."""

    def __init__(self, name: str, work: Path, catalog: Path, data_dir: Path, src: Path | None = None):
        self.name, self.work, self.catalog, self.data_dir, self.src = name, work, catalog, data_dir, src
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
        cmd = [sys.executable, "-m", "venvserve.cli", "serve", "--port", str(self.port),
               "--catalog", str(self.catalog), "--data-dir", str(self.data_dir),
               "--envs-dir", str(ROOT / "envs")]
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

    def workers(self, model: str) -> list[dict]:
        return [w for w in http_json(self.url + "/v1/status")["workers"] if w["model"] == model]

    def socket_of(self, worker: dict) -> Path:
        found = sorted(self.run_dir.glob(f"venvserve-*/{self.proc.pid}*/w{worker['id']}.sock"))
        if not found:
            raise RuntimeError(f"no socket for worker {worker['id']} under {self.run_dir}")
        return found[0]


class Bare:
    """The single-hop limit: bench/bare_app.py on uvicorn with uvloop + httptools, no access log."""

    name = "bare"

    def __init__(self, work: Path):
        self.work, self.log, self.proc, self.port = work, work / "bare.log", None, 0

    def start(self) -> "Bare":
        self.port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(self.port),
               "--no-access-log", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT), "BENCH_SPOOL": str(self.work)})
        # No GET route: any HTTP answer (405) means it is up.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.log.read_text())
                time.sleep(0.05)
        raise RuntimeError("the bare app did not start")

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


# -- inputs ---------------------------------------------------------------------

def font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        return ImageFont.load_default(size=size)


def text_page(lines: list[str], size: int = 30, width: int = 900):
    from PIL import Image, ImageDraw

    f = font(size)
    height = int(len(lines) * size * 1.7 + 2 * size)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size + i * size * 1.7), line, fill="black", font=f)
    return image


def png_bytes(image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kw)
    return buf.getvalue()


def small_png() -> bytes:
    from PIL import Image

    return png_bytes(Image.new("RGB", (16, 16), (250, 250, 250)))


def big_png(mib: float = 10.0) -> bytes:
    """Noise, stored without compression: a PNG of about ``mib`` MiB."""
    from PIL import Image

    width = 2048
    height = int(mib * 2**20 / (width * 3 + 1))
    rng = random.Random(7)
    raw = rng.randbytes(width * height * 3)
    return png_bytes(Image.frombytes("RGB", (width, height), raw), compress_level=0)


def ocr_pages(n: int, lines_per_page: int = 6) -> list:
    pages = []
    for i in range(n):
        lines = [f"Page {i + 1}: " + OCR_LINES[i % len(OCR_LINES)]]
        lines += [OCR_LINES[(i + j) % len(OCR_LINES)] for j in range(1, lines_per_page)]
        pages.append(text_page(lines))
    return pages


def pdf_bytes(images, dpi: int) -> bytes:
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return buf.getvalue()


def ocr_request(data: bytes, filename: str, model: str) -> bytes:
    body, ctype = load.multipart({"model": model}, "file", filename, data)
    return load.http_request("POST", "/v1/ocr", body, content_type=ctype)


# -- the bench ------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.rows = set(args.rows)
        self.work = Path(tempfile.mkdtemp(prefix="vsb-"))
        self.results: dict = {"machine": machine(), "args": vars(args) | {"rows": sorted(self.rows)},
                              "rows": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.table: list[dict] = []
        self.loop = load.new_loop()
        asyncio.set_event_loop(self.loop)
        self.gateways: list[Gateway] = []
        self.variants: list[Gateway] = []
        self.bare: Bare | None = None
        self.inproc: subprocess.Popen | None = None
        self.env_python: Path | None = None
        self.gw_data = self.work / "data-gw"

    # knobs: the smoke run does a few iterations of each
    def n(self, full, smoke):
        return smoke if self.smoke else full

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def say(self, *parts) -> None:
        print("  ..", *parts, file=sys.stderr, flush=True)

    def add(self, row, figure, value, unit, target=None, ok=None, note="", **raw):
        entry = {"row": row, "figure": figure, "value": value, "unit": unit, "target": target,
                 "pass": ok, "note": note}
        self.table.append(entry)
        self.results["rows"].setdefault(str(row), []).append({**entry, **raw})

    # -- set-up -------------------------------------------------------------------

    def catalog(self, models: list[dict], name: str) -> Path:
        path = self.work / f"{name}.json"
        path.write_text(json.dumps(models))
        return path

    def echo_models(self) -> list[dict]:
        return [{"id": "echo", "architecture": "echo", "max_concurrency": 16, "memory_mb": 20},
                {"id": "echo-q", "architecture": "echo", "memory_mb": 20}]

    def ocr_models(self) -> list[dict]:
        return [
            {"id": "rapidocr", "architecture": "rapidocr", "python_env": "rapidocr",
             "options": {"intra_op_num_threads": 2}, "memory_mb": 400},
            {"id": "rapidocr-r1", "architecture": "rapidocr", "python_env": "rapidocr",
             "options": {"intra_op_num_threads": 1}, "memory_mb": 400, "replicas": 1},
            {"id": "rapidocr-r2", "architecture": "rapidocr", "python_env": "rapidocr",
             "options": {"intra_op_num_threads": 1}, "memory_mb": 400, "replicas": 2},
        ]

    def start_gateways(self) -> None:
        models = self.echo_models()
        if self.rows & {6, 7}:
            models += self.ocr_models()
        main = Gateway("main", self.work, self.catalog(models, "catalog"), self.gw_data).start()
        self.gateways.append(main)
        self.results["gateway_rss_idle_mb"] = main.rss()
        echo_catalog = self.catalog(self.echo_models(), "catalog-echo")
        for label, kind, value in self.args.variants:
            src = variant_tree(self.work, label, **{kind: value})
            gw = Gateway(label, self.work, echo_catalog, self.work / f"data-{label}", src).start()
            self.variants.append(gw)
        self.bare = Bare(self.work).start()

    @property
    def main(self) -> Gateway:
        return self.gateways[0]

    def close(self) -> None:
        if self.inproc and self.inproc.poll() is None:
            with contextlib.suppress(OSError, BrokenPipeError):
                self.inproc.stdin.write("quit\n")
                self.inproc.stdin.flush()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.inproc.wait(10)
            if self.inproc.poll() is None:
                self.inproc.kill()
        for gw in self.gateways + self.variants:
            gw.stop()
        if self.bare:
            self.bare.stop()
        self.loop.close()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- row 4: env cold start -------------------------------------------------------

    def row4(self) -> None:
        from venvserve.envs import EnvManager

        self.say("row 4: rapidocr env from its lock (uv cache warm) vs python -m venv + pip")
        times, venvs = [], []
        data_dirs = [self.gw_data, self.work / "data-uv2"]
        for i, data in enumerate(data_dirs):
            manager = EnvManager(ROOT / "envs", data)
            t0 = time.perf_counter()
            status = self.run(manager.ensure("rapidocr"))
            times.append(time.perf_counter() - t0)
            venvs.append(status.path)
            if i == 0:
                self.env_python = status.python
        # uv sync alone, for reference (what the manager adds is status, lock, marker).
        bare_dir = self.work / "uv-bare"
        env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(bare_dir), "UV_NO_PROGRESS": "1"}
        env.pop("VIRTUAL_ENV", None)
        from venvserve.envs.manager import uv_binary

        t0 = time.perf_counter()
        subprocess.run([uv_binary(), "sync", "--frozen", "--no-install-project", "--project",
                        str(ROOT / "envs" / "rapidocr"), "-q"], env=env, check=True)
        uv_sync = time.perf_counter() - t0
        uv_du = du_mb(venvs)
        self.results["rows"]["4_detail"] = {"ensure_s": times, "uv_sync_s": uv_sync, "uv_du_mb": uv_du}
        first = times[0]
        self.add(4, "env cold start, EnvManager.ensure (uv, warm cache)", round(first, 2), "s", "<= 1 s",
                 first <= 1.0, f"2nd build {times[1]:.2f} s; bare `uv sync --frozen` {uv_sync:.2f} s")
        if self.args.no_pip:
            self.add(4, "disk, two uv envs (du -sh over both)", uv_du, "MB", None, None, "pip skipped")
            return
        reqs = self.work / "requirements.txt"
        exported = subprocess.run([uv_binary(), "export", "--project", str(ROOT / "envs" / "rapidocr"),
                                   "--frozen", "--no-hashes", "--no-header", "--no-emit-project", "-q"],
                                  check=True, capture_output=True, text=True).stdout
        reqs.write_text(exported)
        python = base_python(self.env_python)
        pip_times, pip_venvs = [], []
        for i in range(2):
            venv = self.work / f"pip-venv{i}"
            t0 = time.perf_counter()
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
            done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                                   "--disable-pip-version-check", "-r", str(reqs)],
                                  capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError("pip install failed:\n" + done.stdout[-2000:] + done.stderr[-2000:])
            pip_times.append(time.perf_counter() - t0)
            pip_venvs.append(venv)
        pip_du = du_mb(pip_venvs)
        pip_s = pip_times[1]  # the second one: pip's own cache is warm too
        self.results["rows"]["4_detail"].update(pip_s=pip_times, pip_du_mb=pip_du, python=str(python))
        self.add(4, "  same packages, python -m venv + pip (warm pip cache)", round(pip_s, 1), "s", None, None,
                 f"{pip_s / first:.0f}x the uv build; 1st pip run {pip_times[0]:.1f} s")
        self.add(4, "disk, two envs (du -sh over both): uv vs pip", uv_du, "MB", None, None,
                 f"pip: {pip_du:.0f} MB ({pip_du / uv_du:.1f}x): uv hard-links from its cache")

    def ensure_env(self) -> None:
        if self.env_python is None:
            from venvserve.envs import EnvManager

            self.say("building the rapidocr env for rows 5-7")
            status = self.run(EnvManager(ROOT / "envs", self.gw_data).ensure("rapidocr"))
            self.env_python = status.python

    # -- rows 1 and 8: throughput, memory -------------------------------------------------

    def row1(self) -> None:
        self.say("row 1: echo through the gateway vs the single-hop limit, 16 connections")
        request = load.http_request("POST", "/v1/models/echo/infer", ECHO_BODY)
        gateways = [self.main] + self.variants
        targets = [("bare", self.bare.target())] + [(g.name, g.target()) for g in gateways]
        duration, rounds = self.n(2.0, 0.4), self.n(3, 1)
        for _, target in targets:  # warm-up: workers spawned, connections and caches warm
            self.run(load.run(target, request, 16, self.n(1.0, 0.3), warmup=self.n(0.5, 0.1)))
        rps = {name: [] for name, _ in targets}
        peak = {g.name: g.rss() for g in gateways}
        for _ in range(rounds):
            for name, target in targets:
                result = self.run(load.run(target, request, 16, duration, warmup=0.2))
                self._check(name, result)
                rps[name].append(result.rps)
                for g in gateways:
                    if g.name == name:
                        peak[name] = max(peak[name] or 0, g.rss() or 0)
        ratios = {g.name: median([a / b for a, b in zip(rps[g.name], rps["bare"])]) for g in gateways}
        self.results["rows"]["1_detail"] = {"rps": rps, "ratios": ratios}
        self.add(1, "single-hop limit: bare uvicorn+FastAPI no-op, 16 conn", round(median(rps["bare"])),
                 "req/s")
        for g in gateways:
            label = "gateway, echo infer, 16 conn" + ("" if g is self.main else f" [{g.name}]")
            self.add(1, label, round(median(rps[g.name])), "req/s", ">= 0.5x limit", ratios[g.name] >= 0.5,
                     f"{ratios[g.name]:.2f}x the limit")
        self.results["gateway_rss_load_mb"] = peak
        # The queued path: a model with max_concurrency 1 (every OCR model) behind 16 connections.
        queued = load.http_request("POST", "/v1/models/echo-q/infer", ECHO_BODY)
        self.run(load.run(self.main.target(), queued, 16, self.n(0.5, 0.2), warmup=0.2))
        q = self.run(load.run(self.main.target(), queued, 16, duration, warmup=0.2))
        self._check("echo-q", q)
        self.add(1, "  same, echo with max_concurrency 1 (queued)", round(q.rps), "req/s", None, None,
                 f"{q.rps / median(rps['bare']):.2f}x the limit")
        if shutil.which("wrk") and not self.smoke:
            lua = self.work / "post.lua"
            lua.write_text('wrk.method = "POST"\nwrk.body = ' + json.dumps(ECHO_BODY.decode())
                           + '\nwrk.headers["Content-Type"] = "application/json"\n')
            w = {}
            for name, port in (("bare", self.bare.port), ("main", self.main.port)):
                out = subprocess.run(["wrk", "-t1", "-c16", "-d2s", "-s", str(lua),
                                      f"http://127.0.0.1:{port}/v1/models/echo/infer"],
                                     capture_output=True, text=True).stdout
                found = re.search(r"Requests/sec:\s+([\d.]+)", out)
                w[name] = float(found.group(1)) if found else None
            self.results["rows"]["1_wrk"] = w
            if w.get("bare") and w.get("main"):
                self.add(1, "  cross-check with wrk: gateway vs limit", round(w["main"]), "req/s", None, None,
                         f"{w['main'] / w['bare']:.2f}x (limit {w['bare']:.0f} req/s)")

    def row8(self) -> None:
        idle = self.results.get("gateway_rss_idle_mb")
        peak = self.results.get("gateway_rss_load_mb", {}).get("main")
        self.add(8, "gateway RSS idle (after start)", idle, "MB", "<= 60 MB", idle is not None and idle <= 60,
                 f"under load (row 1): {peak} MB" if peak else "")
        for g in self.variants:
            self.add(8, f"  gateway RSS idle [{g.name}]", self.results.get(f"rss_idle_{g.name}"), "MB")
        workers = self.main.workers("echo")
        if workers:
            rss = rss_mb(workers[0]["pid"])
            self.add(8, "echo worker RSS (the runtime, no model)", rss, "MB", "<= 20 MB",
                     rss is not None and rss <= 20)
        spawned = self.results["rows"].get("5_detail", {}).get("rapidocr_ready_rss_mb")
        loaded = self.results["rows"].get("6_detail", {}).get("inproc_load_rss_mb")
        if spawned and loaded:
            # Both right after load + warm-up: the worker's ready line vs the same backend in-process.
            extra = round(spawned - loaded, 1)
            self.add(8, "rapidocr worker RSS at ready minus the model loaded in-process", extra, "MB", "<= 20 MB",
                     extra <= 20, f"worker {spawned} MB, in-process {loaded} MB")

    # -- row 2: added latency -------------------------------------------------------------

    def row2(self) -> None:
        self.say("row 2: added latency, 1 connection: gateway vs the worker's own socket")
        request = load.http_request("POST", "/v1/models/echo/infer", ECHO_BODY)
        direct_req = load.http_request("POST", "/infer", ECHO_BODY, host="worker")
        gateways = [self.main] + self.variants
        sockets = {g.name: load.Target(unix=str(g.socket_of(g.workers("echo")[0]))) for g in gateways}
        duration, rounds = self.n(1.5, 0.3), self.n(3, 1)
        p50 = {name: [] for name in ["bare", "direct"] + [g.name for g in gateways]}
        for _ in range(rounds):
            for g in gateways:
                r = self.run(load.run(g.target(), request, 1, duration, warmup=0.2))
                self._check(g.name, r)
                p50[g.name].append(r.p50_ms)
            r = self.run(load.run(sockets["main"], direct_req, 1, duration, warmup=0.2))
            self._check("direct", r)
            p50["direct"].append(r.p50_ms)
            p50["bare"].append(self.run(load.run(self.bare.target(), request, 1, duration, warmup=0.2)).p50_ms)
        med = {k: median(v) for k, v in p50.items()}
        self.results["rows"]["2_detail"] = {"p50_ms": p50}
        for g in gateways:
            added = med[g.name] - med["direct"]
            label = "added latency p50, gateway - worker socket" + ("" if g is self.main else f" [{g.name}]")
            self.add(2, label, round(added, 3), "ms", "<= 0.4 ms", added <= 0.4,
                     f"gateway {med[g.name]:.3f} ms, worker {med['direct']:.3f} ms, single hop {med['bare']:.3f} ms")

    # -- row 3: large inputs ---------------------------------------------------------------

    def row3(self) -> None:
        self.say("row 3: a 10 MiB image through /v1/ocr to echo vs a 100-byte one")
        small, big = small_png(), big_png(self.n(10.0, 2.0))
        gateways = [self.main] + self.variants
        reqs = {"small": ocr_request(small, "small.png", "echo-q"), "big": ocr_request(big, "big.png", "echo-q")}
        rounds = self.n(5, 1)
        servers = [self.bare] + gateways
        lat = {(g.name, k): [] for g in servers for k in reqs}
        for g in servers:
            self.run(load.run_count(g.target(), reqs["small"], 2, warmup_count=2))
            self.run(load.run_count(g.target(), reqs["big"], 1, warmup_count=1))
        for _ in range(rounds):
            for g in servers:
                for kind, count in (("small", self.n(6, 2)), ("big", self.n(3, 1))):
                    r = self.run(load.run_count(g.target(), reqs[kind], count, warmup_count=0))
                    self._check(g.name if g is not self.main else f"/v1/ocr {kind}", r)
                    lat[(g.name, kind)] += [x / 1000 for x in r.latencies_us]
        # The yardstick: writing the same number of bytes to a file in the data dir once.
        writes = []
        target = self.gw_data / "bench-write.bin"
        for _ in range(self.n(7, 2)):
            t0 = time.perf_counter()
            with open(target, "wb") as f:
                f.write(big)
            writes.append((time.perf_counter() - t0) * 1000)
            target.unlink()
        write_ms = median(writes)
        self.results["rows"]["3_detail"] = {"latency_ms": {f"{a}/{b}": v for (a, b), v in lat.items()},
                                            "write_ms": writes, "big_bytes": len(big), "small_bytes": len(small)}
        floor = median(lat[("bare", "big")]) - median(lat[("bare", "small")])
        self.add(3, "  floor: bare uvicorn app streaming the same upload to a file", round(floor, 1), "ms", None,
                 None, f"{floor / write_ms:.1f}x writing it once")
        for g in gateways:
            extra = median(lat[(g.name, "big")]) - median(lat[(g.name, "small")])
            label = f"extra time for {len(big) / 2**20:.0f} MiB vs {len(small)} B upload" + \
                ("" if g is self.main else f" [{g.name}]")
            self.add(3, label, round(extra, 1), "ms", "<= 2x one disk write", extra <= 2 * write_ms,
                     f"{extra / write_ms:.1f}x writing it once ({write_ms:.1f} ms), "
                     f"{extra - floor:+.1f} ms over the floor")

    # -- row 5: worker spawn --------------------------------------------------------------

    def row5(self) -> None:
        from venvserve.workers.process import LaunchSpec, WorkerProcess
        from venvserve.workers.runtime_path import runtime_path

        python = str(self.env_python) if self.env_python else sys.executable
        where = "the rapidocr env" if self.env_python else "the gateway's interpreter"
        self.say(f"row 5: worker spawn -> ready in {where}")
        runtime = runtime_path(self.work / "data-spawn")

        async def spawn(architecture: str, options: dict) -> tuple[float, float]:
            sock = self.work / "spawn.sock"
            spec = LaunchSpec(model="bench", architecture=architecture, python=python, options=options,
                              max_concurrency=1, runtime_path=runtime, socket=sock)
            worker = WorkerProcess(spec)
            await worker.start(600)
            ready, load_ms = worker.ready_ms, worker.info.get("load_ms") or 0.0
            ready_rss.append(worker.info.get("rss_mb"))
            await worker.stop(10)
            return ready, load_ms

        ready_rss: list = []
        self.run(spawn("echo", {}))  # warm-up: page cache, .pyc files
        echo = [self.run(spawn("echo", {}))[0] for _ in range(self.n(7, 2))]
        bare = []
        for _ in range(self.n(7, 2)):
            t0 = time.perf_counter()
            subprocess.run([python, "-c", "pass"], check=True)
            bare.append((time.perf_counter() - t0) * 1000)
        detail = {"echo_ready_ms": echo, "python_c_pass_ms": bare, "python": python}
        self.add(5, f"spawn -> ready, echo in {where}", round(median(echo), 1), "ms", "<= 100 ms",
                 median(echo) <= 100, f"`python -c pass`: {median(bare):.1f} ms")
        if self.env_python and not self.smoke and 5 in self.rows and self.rows & {5}:
            del ready_rss[:]
            runs = [self.run(spawn("rapidocr", {"intra_op_num_threads": 2})) for _ in range(3)]
            detail["rapidocr_ready_rss_mb"] = median(ready_rss)
            overhead = [r - l for r, l in runs]
            detail["rapidocr_ready_load_ms"] = runs
            self.add(5, "spawn -> ready minus model load, rapidocr", round(median(overhead), 1), "ms",
                     "<= 100 ms", median(overhead) <= 100,
                     f"ready {median([r for r, _ in runs]):.0f} ms, of which load {median([l for _, l in runs]):.0f} ms")
        self.results["rows"]["5_detail"] = detail

    # -- row 6: OCR throughput ----------------------------------------------------------

    def row6(self) -> None:
        self.say("row 6: OCR pages/s through the gateway vs in-process rapidocr")
        pages = ocr_pages(self.n(4, 2))
        paths = []
        for i, page in enumerate(pages):
            path = self.work / f"page{i + 1}.png"
            page.save(path)
            paths.append(path)
        options = {"intra_op_num_threads": 2}
        env = {**os.environ, "PYTHONPATH": str(ROOT / "worker_runtime")}
        self.inproc = subprocess.Popen([str(self.env_python), "-s", str(ROOT / "bench" / "ocr_inproc.py"),
                                        json.dumps(options), *map(str, paths)], env=env, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        hello = json.loads(self.inproc.stdout.readline())
        load_rss = hello["rss_mb"]  # right after load (and its warm-up), as a worker's ready line reports it
        self.main.load_model("rapidocr")
        reqs = [ocr_request(p.read_bytes(), p.name, "rapidocr") for p in paths]

        def inproc_round() -> float:
            self.inproc.stdin.write("round\n")
            self.inproc.stdin.flush()
            answer = json.loads(self.inproc.stdout.readline())
            hello["rss_mb"] = answer["rss_mb"]
            return sum(answer["seconds"])

        inproc_round()  # warm-up, both sides
        self.run(load.run_sequence(self.main.target(), reqs))
        gw_s, in_s = [], []
        for _ in range(self.n(3, 1)):
            in_s.append(inproc_round())
            r = self.run(load.run_sequence(self.main.target(), reqs))
            self._check("rapidocr /v1/ocr", r)
            gw_s.append(r.seconds)
        n = len(paths)
        gw_pps, in_pps = n / median(gw_s), n / median(in_s)
        ratio = median([b / a for a, b in zip(gw_s, in_s)])
        worker = self.main.workers("rapidocr")
        self.results["rows"]["6_detail"] = {"gateway_s": gw_s, "inproc_s": in_s, "pages": n,
                                            "inproc_load_ms": hello["load_ms"], "inproc_rss_mb": hello["rss_mb"],
                                            "inproc_load_rss_mb": load_rss,
                                            "worker_rss_mb": rss_mb(worker[0]["pid"]) if worker else None}
        self.add(6, "OCR through the gateway, rapidocr, 1 replica", round(gw_pps, 2), "pages/s",
                 ">= 0.95x in-process", ratio >= 0.95, f"{ratio:.3f}x in-process ({in_pps:.2f} pages/s)")

    # -- row 7: scale-out ----------------------------------------------------------------

    def row7(self) -> None:
        self.say("row 7: an 8-page PDF, replicas 1 vs 2 (intra_op_num_threads 1)")
        pdf = pdf_bytes(ocr_pages(8, lines_per_page=self.n(10, 3)), dpi=200)
        for model in ("rapidocr-r1", "rapidocr-r2"):
            self.main.load_model(model)
        reqs = {m: ocr_request(pdf, "doc.pdf", m) for m in ("rapidocr-r1", "rapidocr-r2")}
        one_page = pdf_bytes(ocr_pages(1, lines_per_page=3), dpi=200)
        for m in reqs:  # warm-up: pypdfium2 imported, every worker has served a page
            self._check(m, self.run(load.run_count(self.main.target(), ocr_request(one_page, "one.pdf", m), 2,
                                                   warmup_count=0)))
        secs = {m: [] for m in reqs}
        for _ in range(self.n(2, 1)):
            for m, req in reqs.items():
                r = self.run(load.run_count(self.main.target(), req, 1, warmup_count=0))
                self._check(m, r)
                secs[m].append(r.seconds)
        ratio = median([a / b for a, b in zip(secs["rapidocr-r1"], secs["rapidocr-r2"])])
        self.results["rows"]["7_detail"] = {"seconds": secs, "pdf_bytes": len(pdf)}
        self.add(7, "8-page PDF, 2 replicas vs 1 (speed-up)", round(ratio, 2), "x", ">= 1.6x", ratio >= 1.6,
                 f"1 replica {median(secs['rapidocr-r1']):.2f} s, 2 replicas {median(secs['rapidocr-r2']):.2f} s")

    # -- plumbing ----------------------------------------------------------------------

    def _check(self, what: str, result: load.Result) -> None:
        if what.startswith(("ref-", "patch-")) and result.requests:
            # A comparison tree may have the bugs this one fixed: count its errors, go on.
            if result.errors:
                errs = self.results.setdefault("variant_errors", {})
                errs[what] = errs.get(what, 0) + result.errors
                self.say(f"{what}: {result.errors} errors ({result.statuses})")
            return
        if result.errors or not result.requests:
            raise RuntimeError(f"{what}: {result.errors} errors in {result.requests} requests "
                               f"(statuses {result.statuses}, {result.last_error})")

    def execute(self) -> None:
        t0 = time.monotonic()
        if 4 in self.rows:
            self.row4()
        if self.rows & {5, 6, 7} and not self.smoke:
            self.ensure_env()
        self.start_gateways()
        for g in self.variants:
            self.results[f"rss_idle_{g.name}"] = g.rss()
        if self.rows & {1, 8}:
            self.row1()
        if 2 in self.rows:
            self.row2()
        if 3 in self.rows:
            self.row3()
        if 5 in self.rows:
            self.row5()
        if 6 in self.rows and self.env_python:
            self.row6()
        if 7 in self.rows and self.env_python:
            self.row7()
        if 8 in self.rows:
            self.row8()
        self.results["seconds"] = round(time.monotonic() - t0, 1)
        self.results["machine"]["loadavg_end"] = os.getloadavg()
        self.results["table"] = self.table


def du_mb(paths) -> float:
    """``du -sh`` over all paths at once: a file hard-linked into several counts once."""
    out = subprocess.run(["du", "-sk", "-c", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return round(int(out.strip().splitlines()[-1].split()[0]) / 1024, 1)


def base_python(venv_python: Path | None) -> str:
    """The interpreter a venv was made from (so pip's venv gets the same Python as uv's)."""
    if venv_python:
        cfg = Path(venv_python).parent.parent / "pyvenv.cfg"
        with contextlib.suppress(OSError):
            values = dict(line.split(" = ", 1) for line in cfg.read_text().splitlines() if " = " in line)
            version = values.get("version_info", values.get("version", ""))
            home = values.get("home")
            if home:
                major_minor = ".".join(version.split(".")[:2])
                for name in (f"python{major_minor}", "python3"):
                    candidate = Path(home) / name
                    if candidate.exists():
                        return str(candidate)
    return sys.executable


def format_table(table: list[dict]) -> str:
    head = ("#", "figure", "measured", "target", "")
    rows = []
    for e in table:
        value = "" if e["value"] is None else f"{e['value']:,}" if isinstance(e["value"], int) else f"{e['value']}"
        verdict = "" if e["pass"] is None else ("pass" if e["pass"] else "MISS")
        measured = f"{value} {e['unit']}".strip() + (f"  ({e['note']})" if e["note"] else "")
        rows.append((str(e["row"]), e["figure"], measured, e["target"] or "", verdict))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths + [4]))]
    lines.append("-+-".join("-" * w for w in widths + [4]))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths + [4])) for r in rows]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1,2,3,4,5,6,7,8", help="which rows to run (default: all)")
    parser.add_argument("--smoke", action="store_true", help="a few iterations of rows 1, 2, 3, 5, 8 (for tests)")
    parser.add_argument("--no-pip", action="store_true", help="row 4 without the venv+pip comparison (~45 s less)")
    parser.add_argument("--compare", action="append", default=[], metavar="REF",
                        help="also measure a gateway from git REF (rows 1-3, 8), side by side")
    parser.add_argument("--patch", action="append", default=[], metavar="DIFF",
                        help="also measure a gateway from this tree with DIFF applied")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON result")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data dirs)")
    args = parser.parse_args(argv)
    args.rows = sorted({int(r) for r in args.rows.split(",") if r.strip()})
    if args.smoke:
        args.rows = [r for r in args.rows if r in (1, 2, 3, 5, 8)]
    args.variants = [(f"ref-{r}", "ref", r) for r in args.compare]
    args.variants += [(f"patch-{Path(p).stem}", "patch", p) for p in args.patch]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    print(f"venvserve bench: rows {','.join(map(str, args.rows))}"
          f"{' (smoke)' if args.smoke else ''}; work dir {bench.work}", file=sys.stderr, flush=True)
    try:
        bench.execute()
    finally:
        bench.close()
    m = bench.results["machine"]
    print(f"\nmachine: {m.get('cpu', '?')}, {m['cores']} cores, {m.get('memory_gb', '?')} GB, Python {m['python']}, "
          f"load average {m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}; {bench.results['seconds']} s\n")
    print(format_table(bench.table))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}{'-smoke' if args.smoke else ''}.json"
    out.write_text(json.dumps(bench.results, indent=1, default=str))
    print(f"\nresult: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
