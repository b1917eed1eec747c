"""Interactive latency while a long job runs: jobs must stay below interactive requests.

    python -m bench.jobs [--pages 300] [--page-ms 50] [--requests 40] [--replicas 1]

A real server in a subprocess with the echo model, which sleeps ``--page-ms``
per page (a model whose page time is spent off the CPU, like a GPU model).
First the p50 of ``POST /v1/ocr`` on one image with the server idle; then the
same while a ``--pages`` job runs on the same model. The target: the busy p50
within 1.5 × the idle p50 plus one page time (an interactive request waits at
most for the job page already on the worker, never behind the job's queue).
Requests are spaced by a random fraction of a page time, so they arrive at
every point of a job page.
"""

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path, replicas: int) -> tuple[subprocess.Popen, str]:
    catalog = folder / "models.json"
    catalog.write_text(json.dumps([{"id": "echo", "architecture": "echo", "replicas": replicas}]))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "venvserve.cli", "serve", "--port", str(port), "--catalog",
                             str(catalog), "--data-dir", str(folder / "data")],
                            stdout=open(folder / "server.log", "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "VENVSERVE_PDF_DPI": "72", "VENVSERVE_MAX_PDF_PAGES": "10000"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def inputs(folder: Path, pages: int) -> tuple[Path, Path]:
    from PIL import Image

    png = folder / "page.png"
    Image.new("L", (400, 100), 255).save(png)
    images = [Image.new("L", (400, 100), 255) for _ in range(pages)]
    pdf = folder / "doc.pdf"
    images[0].save(pdf, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return png, pdf


def ocr_ms(client: httpx.Client, png: Path, options: str) -> float:
    t0 = time.perf_counter()
    with open(png, "rb") as f:
        r = client.post("/v1/ocr", files={"file": ("page.png", f)}, data={"model": "echo", "options": options})
    r.raise_for_status()
    return (time.perf_counter() - t0) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--page-ms", type=float, default=50.0)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args(argv)
    page_s = args.page_ms / 1000
    options = json.dumps({"sleep_s": page_s})
    folder = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    png, pdf = inputs(folder, args.pages)
    proc, url = start(folder, args.replicas)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for _ in range(3):
                ocr_ms(client, png, options)  # workers up, connections warm
            idle = [ocr_ms(client, png, options) for _ in range(args.requests)]
            with open(pdf, "rb") as f:
                answer = client.post("/v1/jobs", files={"file": ("doc.pdf", f)},
                                     data={"model": "echo", "options": options})
            if answer.status_code != 202:
                raise SystemExit(f"the job was refused: {answer.text}")
            job = answer.json()
            while client.get(f"/v1/jobs/{job['id']}").json()["pages_done"] < 5:
                time.sleep(0.02)
            busy = []
            for _ in range(args.requests):
                time.sleep(random.uniform(0, page_s))
                busy.append(ocr_ms(client, png, options))
            state = client.get(f"/v1/jobs/{job['id']}").json()
            client.delete(f"/v1/jobs/{job['id']}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    idle_p50, busy_p50 = statistics.median(idle), statistics.median(busy)
    bound = 1.5 * idle_p50 + args.page_ms
    print(json.dumps({
        "pages": args.pages, "page_ms": args.page_ms, "replicas": args.replicas, "requests": args.requests,
        "idle_p50_ms": round(idle_p50, 1), "busy_p50_ms": round(busy_p50, 1),
        "busy_p95_ms": round(statistics.quantiles(busy, n=20)[-1], 1), "bound_ms": round(bound, 1),
        "job_still_running": state["status"] == "running", "job_pages_done_meanwhile": state["pages_done"],
        "pass": busy_p50 <= bound and state["status"] == "running",
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
