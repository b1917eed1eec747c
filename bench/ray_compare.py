"""Throughput: the single-machine gateway vs. the same catalog on Ray Serve, on this machine.

    python bench/ray_compare.py [--requests 40] [--concurrency 1 4] [--models echo rapidocr]

Starts each server in turn (never both at once) with the same two-model
catalog (echo: routing cost only; rapidocr: real OCR of one rendered line
image, 1 replica, 2 onnxruntime threads), warms it up, then sends the same
requests at each concurrency and reports requests/s and latency percentiles.
Ray runs as a private one-node cluster (`--address local`) with as many CPUs
as the machine has. Results go to bench/results/ray_compare.json. Every wait
is bounded; both servers are stopped on exit.
"""

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
READY = "venvserve-ray: ready "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_png() -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, 36) if os.path.exists(FONT) else ImageFont.load_default()
    image = Image.new("RGB", (900, 160), "white")
    draw = ImageDraw.Draw(image)
    draw.text((30, 30), "Throughput of venvserve on one machine", fill="black", font=font)
    draw.text((30, 90), "Gateway or Ray Serve: 0123456789", fill="black", font=font)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def catalog(path: Path) -> None:
    shipped = {m["id"]: m for m in json.loads((ROOT / "models.json").read_text())}
    path.write_text(json.dumps([shipped["rapidocr"], shipped["echo"]]))


def wait_ready(proc, url: str, log: Path, timeout: float, marker: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if marker is None or marker in log.read_text(errors="replace"):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    raise RuntimeError(f"server not ready within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def stop(proc) -> None:
    temp_dir = getattr(proc, "ray_temp_dir", None)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the server's own process group only
    except (ProcessLookupError, PermissionError):
        pass
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)


def start(kind: str, tmp: Path):
    port = free_port()
    log = tmp / f"{kind}.log"
    common = ["--catalog", str(tmp / "models.json"), "--envs-dir", str(ROOT / "envs"),
              "--data-dir", str(tmp / "data")]
    if kind == "gateway":
        cmd = [sys.executable, "-m", "venvserve.cli", "serve", "--port", str(port), *common]
        marker, temp_dir = None, None
    else:
        temp_dir = tempfile.mkdtemp(prefix="vsray-", dir="/tmp")
        cmd = [sys.executable, "-m", "venvserve.ray", "deploy", "--address", "local", "--port", str(port),
               "--temp-dir", temp_dir, "--object-store-mb", "128", "--cpus-per-replica", "0.5", *common]
        marker = READY
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=tmp, env=env,
                            start_new_session=True)
    proc.ray_temp_dir = temp_dir
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log, 300, marker)
    except BaseException:
        stop(proc)
        raise
    return proc, url


def measure(url: str, model: str, png: bytes, n: int, concurrency: int) -> dict:
    with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
        def one(_):
            t0 = time.perf_counter()
            r = client.post("/v1/ocr", files={"file": ("p.png", png, "image/png")}, data={"model": model})
            r.raise_for_status()
            return time.perf_counter() - t0

        for _ in range(3):  # warm-up: load the model, fill pools
            one(None)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = sorted(pool.map(one, range(n)))
        wall = time.perf_counter() - t0
    return {"model": model, "concurrency": concurrency, "requests": n, "rps": round(n / wall, 2),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p95_ms": round(latencies[min(n - 1, int(n * 0.95))] * 1000, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--models", nargs="+", default=["echo", "rapidocr"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ray_compare.json")
    args = parser.parse_args()
    png = page_png()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs-bench-") as tmp_name:
        tmp = Path(tmp_name)
        catalog(tmp / "models.json")
        for kind in ("gateway", "ray"):
            t0 = time.monotonic()
            proc, url = start(kind, tmp)
            print(f"{kind}: ready in {time.monotonic() - t0:.1f}s at {url}", flush=True)
            try:
                for model in args.models:
                    for c in args.concurrency:
                        row = {"server": kind, **measure(url, model, png, args.requests, c)}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
            finally:
                stop(proc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpus": os.cpu_count(), "python": sys.version.split()[0], "rows": rows},
                                   indent=1))
    print("\n| model | concurrency | gateway req/s (p50 ms) | Ray Serve req/s (p50 ms) |\n|---|---|---|---|")
    for model in args.models:
        for c in args.concurrency:
            g = next(r for r in rows if r["server"] == "gateway" and r["model"] == model and r["concurrency"] == c)
            r_ = next(r for r in rows if r["server"] == "ray" and r["model"] == model and r["concurrency"] == c)
            print(f"| {model} | {c} | {g['rps']} ({g['p50_ms']}) | {r_['rps']} ({r_['p50_ms']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
