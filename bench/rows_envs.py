"""Rows 4-7: an env from its lock (uv vs venv+pip), worker spawn, OCR through the gateway vs in-process, scale-out.

Rows 6 and 7 need the rapidocr env (built by row 4 or ``ensure_env``) and the
main gateway with the OCR models of ``ocr_models`` in its catalog.
"""

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from venvserve.system.processes import rss_mb

from . import inputs, load
from .report import median
from .servers import ROOT


def row4(b) -> None:
    from venvserve.envs import EnvManager

    b.say("row 4: rapidocr env from its lock (uv cache warm) vs python -m venv + pip")
    times, venvs = [], []
    data_dirs = [b.gw_data, b.work / "data-uv2"]
    for i, data in enumerate(data_dirs):
        manager = EnvManager(ROOT / "envs", data)
        t0 = time.perf_counter()
        status = b.run(manager.ensure("rapidocr"))
        times.append(time.perf_counter() - t0)
        venvs.append(status.path)
        if i == 0:
            b.env_python = status.python
    # uv sync alone, for reference (what the manager adds is status, lock, marker).
    bare_dir = b.work / "uv-bare"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(bare_dir), "UV_NO_PROGRESS": "1"}
    env.pop("VIRTUAL_ENV", None)
    from venvserve.envs.manager import uv_binary

    t0 = time.perf_counter()
    subprocess.run([uv_binary(), "sync", "--frozen", "--no-install-project", "--project",
                    str(ROOT / "envs" / "rapidocr"), "-q"], env=env, check=True)
    uv_sync = time.perf_counter() - t0
    uv_du = du_mb(venvs)
    b.results["rows"]["4_detail"] = {"ensure_s": times, "uv_sync_s": uv_sync, "uv_du_mb": uv_du}
    first = times[0]
    b.add(4, "env cold start, EnvManager.ensure (uv, warm cache)", round(first, 2), "s", "<= 1 s",
          first <= 1.0, f"2nd build {times[1]:.2f} s; bare `uv sync --frozen` {uv_sync:.2f} s")
    if b.args.no_pip:
        b.add(4, "disk, two uv envs (du -sh over both)", uv_du, "MB", None, None, "pip skipped")
        return
    reqs = b.work / "requirements.txt"
    exported = subprocess.run([uv_binary(), "export", "--project", str(ROOT / "envs" / "rapidocr"),
                               "--frozen", "--no-hashes", "--no-header", "--no-emit-project", "-q"],
                              check=True, capture_output=True, text=True).stdout
    reqs.write_text(exported)
    python = base_python(b.env_python)
    pip_times, pip_venvs = [], []
    for i in range(2):
        venv = b.work / f"pip-venv{i}"
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
    b.results["rows"]["4_detail"].update(pip_s=pip_times, pip_du_mb=pip_du, python=str(python))
    b.add(4, "  same packages, python -m venv + pip (warm pip cache)", round(pip_s, 1), "s", None, None,
          f"{pip_s / first:.0f}x the uv build; 1st pip run {pip_times[0]:.1f} s")
    b.add(4, "disk, two envs (du -sh over both): uv vs pip", uv_du, "MB", None, None,
          f"pip: {pip_du:.0f} MB ({pip_du / uv_du:.1f}x): uv hard-links from its cache")

def ensure_env(b) -> None:
    if b.env_python is None:
        from venvserve.envs import EnvManager

        b.say("building the rapidocr env for rows 5-7")
        status = b.run(EnvManager(ROOT / "envs", b.gw_data).ensure("rapidocr"))
        b.env_python = status.python

def row5(b) -> None:
    from venvserve.workers.process import LaunchSpec, WorkerProcess
    from venvserve.workers.runtime_path import runtime_path

    python = str(b.env_python) if b.env_python else sys.executable
    where = "the rapidocr env" if b.env_python else "the gateway's interpreter"
    b.say(f"row 5: worker spawn -> ready in {where}")
    runtime = runtime_path(b.work / "data-spawn")

    async def spawn(architecture: str, options: dict) -> tuple[float, float]:
        sock = b.work / "spawn.sock"
        spec = LaunchSpec(model="bench", architecture=architecture, python=python, options=options,
                          max_concurrency=1, runtime_path=runtime, socket=sock)
        worker = WorkerProcess(spec)
        await worker.start(600)
        ready, load_ms = worker.ready_ms, worker.info.get("load_ms") or 0.0
        ready_rss.append(worker.info.get("rss_mb"))
        await worker.stop(10)
        return ready, load_ms

    ready_rss: list = []
    b.run(spawn("echo", {}))  # warm-up: page cache, .pyc files
    echo = [b.run(spawn("echo", {}))[0] for _ in range(b.n(7, 2))]
    bare = []
    for _ in range(b.n(7, 2)):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        bare.append((time.perf_counter() - t0) * 1000)
    detail = {"echo_ready_ms": echo, "python_c_pass_ms": bare, "python": python}
    b.add(5, f"spawn -> ready, echo in {where}", round(median(echo), 1), "ms", "<= 100 ms",
          median(echo) <= 100, f"`python -c pass`: {median(bare):.1f} ms")
    if b.env_python and not b.smoke and 5 in b.rows:
        del ready_rss[:]
        runs = [b.run(spawn("rapidocr", {"intra_op_num_threads": 2})) for _ in range(3)]
        detail["rapidocr_ready_rss_mb"] = median(ready_rss)
        overhead = [r - l for r, l in runs]
        detail["rapidocr_ready_load_ms"] = runs
        b.add(5, "spawn -> ready minus model load, rapidocr", round(median(overhead), 1), "ms",
              "<= 100 ms", median(overhead) <= 100,
              f"ready {median([r for r, _ in runs]):.0f} ms, of which load {median([l for _, l in runs]):.0f} ms")
    b.results["rows"]["5_detail"] = detail

def row6(b) -> None:
    b.say("row 6: OCR pages/s through the gateway vs in-process rapidocr")
    pages = inputs.ocr_pages(b.n(4, 2))
    paths = []
    for i, page in enumerate(pages):
        path = b.work / f"page{i + 1}.png"
        page.save(path)
        paths.append(path)
    options = {"intra_op_num_threads": 2}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "worker_runtime")}
    b.inproc = subprocess.Popen([str(b.env_python), "-s", str(ROOT / "bench" / "ocr_inproc.py"),
                                 json.dumps(options), *map(str, paths)], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    hello = json.loads(b.inproc.stdout.readline())
    load_rss = hello["rss_mb"]  # right after load (and its warm-up), as a worker's ready line reports it
    b.main.load_model("rapidocr")
    reqs = [inputs.ocr_request(p.read_bytes(), p.name, "rapidocr") for p in paths]

    def inproc_round() -> float:
        b.inproc.stdin.write("round\n")
        b.inproc.stdin.flush()
        answer = json.loads(b.inproc.stdout.readline())
        hello["rss_mb"] = answer["rss_mb"]
        return sum(answer["seconds"])

    inproc_round()  # warm-up, both sides
    b.run(load.run_sequence(b.main.target(), reqs))
    gw_s, in_s = [], []
    for _ in range(b.n(3, 1)):
        in_s.append(inproc_round())
        r = b.run(load.run_sequence(b.main.target(), reqs))
        b.check("rapidocr /v1/ocr", r)
        gw_s.append(r.seconds)
    n = len(paths)
    gw_pps, in_pps = n / median(gw_s), n / median(in_s)
    ratio = median([b / a for a, b in zip(gw_s, in_s)])
    worker = b.main.workers("rapidocr")
    b.results["rows"]["6_detail"] = {"gateway_s": gw_s, "inproc_s": in_s, "pages": n,
                                     "inproc_load_ms": hello["load_ms"], "inproc_rss_mb": hello["rss_mb"],
                                     "inproc_load_rss_mb": load_rss,
                                     "worker_rss_mb": rss_mb(worker[0]["pid"]) if worker else None}
    b.add(6, "OCR through the gateway, rapidocr, 1 replica", round(gw_pps, 2), "pages/s",
          ">= 0.95x in-process", ratio >= 0.95, f"{ratio:.3f}x in-process ({in_pps:.2f} pages/s)")

def row7(b) -> None:
    b.say("row 7: an 8-page PDF, replicas 1 vs 2 (intra_op_num_threads 1)")
    pdf = inputs.pdf_bytes(inputs.ocr_pages(8, lines_per_page=b.n(10, 3)), dpi=200)
    for model in ("rapidocr-r1", "rapidocr-r2"):
        b.main.load_model(model)
    reqs = {m: inputs.ocr_request(pdf, "doc.pdf", m) for m in ("rapidocr-r1", "rapidocr-r2")}
    one_page = inputs.pdf_bytes(inputs.ocr_pages(1, lines_per_page=3), dpi=200)
    for m in reqs:  # warm-up: pypdfium2 imported, every worker has served a page
        b.check(m, b.run(load.run_count(b.main.target(), inputs.ocr_request(one_page, "one.pdf", m), 2,
                                            warmup_count=0)))
    secs = {m: [] for m in reqs}
    for _ in range(b.n(2, 1)):
        for m, req in reqs.items():
            r = b.run(load.run_count(b.main.target(), req, 1, warmup_count=0))
            b.check(m, r)
            secs[m].append(r.seconds)
    ratio = median([a / b for a, b in zip(secs["rapidocr-r1"], secs["rapidocr-r2"])])
    b.results["rows"]["7_detail"] = {"seconds": secs, "pdf_bytes": len(pdf)}
    b.add(7, "8-page PDF, 2 replicas vs 1 (speed-up)", round(ratio, 2), "x", ">= 1.6x", ratio >= 1.6,
          f"1 replica {median(secs['rapidocr-r1']):.2f} s, 2 replicas {median(secs['rapidocr-r2']):.2f} s")

def ocr_models() -> list[dict]:
    return [
        {"id": "rapidocr", "architecture": "rapidocr", "python_env": "rapidocr",
         "options": {"intra_op_num_threads": 2}, "memory_mb": 400},
        {"id": "rapidocr-r1", "architecture": "rapidocr", "python_env": "rapidocr",
         "options": {"intra_op_num_threads": 1}, "memory_mb": 400, "replicas": 1},
        {"id": "rapidocr-r2", "architecture": "rapidocr", "python_env": "rapidocr",
         "options": {"intra_op_num_threads": 1}, "memory_mb": 400, "replicas": 2},
    ]



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
