"""wrk as a second load generator for row 1, and the grid that explains where it and bench/load.py differ.

    python -m bench.wrk            # bare FastAPI echo vs the gateway: wrk and bench/load.py, several shapes

Both clients are closed-loop over keep-alive connections; they differ in how
much CPU they take from the servers they measure (wrk: C, one thread per
``-t``; bench/load.py: one Python process on uvloop), which matters on a
machine with few cores, where the client, the gateway, its worker and the
bare app all share them.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

PATH = "/v1/models/echo/infer"


def available() -> bool:
    return shutil.which("wrk") is not None


def lua(work: Path, body: bytes) -> Path:
    script = work / f"post-{len(body)}.lua"
    if not script.exists():
        script.write_text('wrk.method = "POST"\nwrk.body = ' + json.dumps(body.decode())
                          + '\nwrk.headers["Content-Type"] = "application/json"\n')
    return script


def rps(work: Path, port: int, body: bytes, connections: int = 16, threads: int = 1,
        seconds: float = 2.0) -> float | None:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "-s", str(lua(work, body)),
                          f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, timeout=seconds + 30).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(found.group(1)) if found else None


def cross_check(work: Path, bare_port: int, gateway_port: int, body: bytes) -> dict:
    return {"bare": rps(work, bare_port, body), "main": rps(work, gateway_port, body)}


# -- the grid: why wrk and bench/load.py disagree -----------------------------------------

def _cpu_s(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc] + proc.children(recursive=True):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _measure(cmd: list[str], server_pids: list[int], parse) -> dict:
    """Run one client command; its req/s, and CPU seconds per 1000 requests of client and server."""
    import resource
    import time

    before_client = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_server = _cpu_s(server_pids)
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    wall = time.monotonic() - t0
    after_client = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = _cpu_s(server_pids) - before_server
    client = (after_client.ru_utime - before_client.ru_utime) + (after_client.ru_stime - before_client.ru_stime)
    rate = parse(out)
    requests = (rate or 0) * float(cmd[cmd.index("-d") + 1].rstrip("s")) if "-d" in cmd else 0
    per_k = 1000 / requests if requests else None
    return {"rps": rate, "client_cpu_ms_per_req": round(client * per_k, 3) if per_k else None,
            "server_cpu_ms_per_req": round(server * per_k, 3) if per_k else None,
            "client_cores": round(client / wall, 2), "server_cores": round(server / wall, 2)}


def grid(work: Path, bare, gateway, body: bytes, seconds: float = 3.0) -> list[dict]:
    import sys

    def wrk_rate(out):
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        return float(found.group(1)) if found else None

    def load_rate(out):
        return json.loads(out)["rps"] if out.strip() else None

    rows = []
    shapes = [("wrk", 1, 16), ("wrk", 2, 16), ("wrk", 1, 64), ("bench/load.py", 1, 16), ("bench/load.py", 1, 64)]
    for client, threads, conns in shapes:
        entry = {"client": client, "threads": threads, "connections": conns}
        for name, server in (("bare", bare), ("gateway", gateway)):
            url = f"http://127.0.0.1:{server.port}{PATH}"
            if client == "wrk":
                cmd = ["wrk", f"-t{threads}", f"-c{conns}", "-d", f"{seconds:g}s", "-s", str(lua(work, body)), url]
                parse = wrk_rate
            else:
                cmd = [sys.executable, "-m", "bench.load", "--url", url, "-c", str(conns), "-d", f"{seconds:g}",
                       "--warmup", "0", "--body", body.decode()]
                parse = load_rate
            entry[name] = _measure(cmd, [server.proc.pid], parse)
        b, g = entry["bare"]["rps"], entry["gateway"]["rps"]
        entry["ratio"] = round(g / b, 2) if b and g else None
        rows.append(entry)
    return rows


def main() -> None:
    import argparse
    import tempfile

    from . import inputs
    from .servers import Bare, Gateway

    parser = argparse.ArgumentParser(description="wrk and bench/load.py against the bare hop and the gateway")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vsb-wrk-"))
    catalog = work / "catalog.json"
    catalog.write_text(json.dumps([{"id": "echo", "architecture": "echo", "max_concurrency": 16, "memory_mb": 20}]))
    bare = Bare(work).start()
    gw = Gateway("main", work, catalog, work / "data").start()
    try:
        gw.load_model("echo")
        grid(work, bare, gw, inputs.ECHO_BODY, 1.0)  # warm-up
        rounds = [grid(work, bare, gw, inputs.ECHO_BODY, args.seconds) for _ in range(args.rounds)]
    finally:
        gw.stop()
        bare.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(rounds, indent=1))
    for i, entry in enumerate(rounds[0]):
        ratios = [r[i]["ratio"] for r in rounds]
        cells = [f"{r[i]['bare']['rps']:.0f}/{r[i]['gateway']['rps']:.0f}" for r in rounds]
        print(f"{entry['client']:14} -t{entry['threads']} -c{entry['connections']:<3} ratio "
              f"{min(ratios):.2f}-{max(ratios):.2f}  bare/gateway req/s {', '.join(cells)}  client cores "
              f"{rounds[0][i]['bare']['client_cores']}/{rounds[0][i]['gateway']['client_cores']}  server cores "
              f"{rounds[0][i]['bare']['server_cores']}/{rounds[0][i]['gateway']['server_cores']}")


if __name__ == "__main__":
    main()
