"""A smoke run of the benchmark (``python -m bench --smoke``): every cheap row runs end to end.

A few iterations each, on loopback, against a real gateway, real echo workers
and the bare single-hop app: every row must produce a number and the result
file must hold it; no timing is asserted (the figures belong in
docs/performance.md, measured side by side on a quiet machine).
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_runs_every_cheap_row_and_writes_its_result(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "| figure" in done.stdout and "machine:" in done.stdout, done.stdout
    [result] = tmp_path.glob("bench-*-smoke.json")
    data = json.loads(result.read_text())
    assert {e["row"] for e in data["table"]} == {1, 2, 3, 5, 8, 9, 10}, data["table"]
    for entry in data["table"]:
        # every row measured a number, and the table on stdout shows the figure the file holds
        assert isinstance(entry["value"], (int, float)) and not isinstance(entry["value"], bool), entry
        assert entry["figure"] in done.stdout, entry
    rates = [e["value"] for e in data["table"] if e["unit"] == "req/s"]
    assert len(rates) >= 5 and all(r > 0 for r in rates), data["table"]
    assert data["machine"]["cores"] >= 1
    rows = data["rows"]
    # row 1: both body sizes through the bare hop and the gateway
    for size in ("100 B", "1 MB"):
        rps = rows["1_detail"][size]["rps"]
        assert rps["bare"] and rps["main"] and min(rps["bare"] + rps["main"]) > 0, rows["1_detail"]
    # row 2: the load generator reached the worker's own Unix socket as well as TCP ports
    assert rows["2_detail"]["p50_ms"]["direct"][0] > 0, rows["2_detail"]
    # row 9: the probe saw the storm, and the storm was answered
    assert rows["9_detail"]["max_stall_ms"]["main"][0] > 0 and rows["9_detail"]["storm_rps"]["main"][0] > 0
    # row 10: every one of the three models was served while they shared two slots
    [run] = rows["10_detail"]["main"]
    assert all(n > 0 for n in run["requests"].values()) and len(run["requests"]) == 3, run
    assert run["spawned"] >= 3, run


def test_bench_load_generator_counts_statuses(tmp_path):
    """bench.load against a tiny stdlib server: bounded, and counts what it got."""
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sys.path.insert(0, str(ROOT))
    from bench import load

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            body = b'{"ok":true}'
            self.send_response(200 if self.path == "/ok" else 404)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = load.Target(port=server.server_address[1])
        ok = asyncio.run(load.run(target, load.http_request("POST", "/ok", b"{}"), 2, duration=0.3,
                                  warmup=0.05, max_requests=50))
        assert 0 < ok.requests <= 50 and ok.errors == 0 and set(ok.statuses) == {200}
        missing = asyncio.run(load.run_count(target, load.http_request("POST", "/nope", b"{}"), 3))
        assert missing.requests == 3 and missing.errors == 3 and missing.statuses == {404: 3}
    finally:
        server.shutdown()
