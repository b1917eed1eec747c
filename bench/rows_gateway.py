"""Rows 1-3 and 8: the gateway against the single-hop limit (throughput, added latency, uploads, memory).

Row 1 relays ``POST /v1/models/echo/infer`` at 16 connections with a
100-byte and a 1 MB JSON body; the limit is one uvicorn+FastAPI hop
(bench/bare_app.py) answering the same bytes. wrk cross-checks the 100-byte
figure (bench/wrk.py).
"""

import time

from . import inputs, load, wrk
from .report import median
from venvserve.system.processes import rss_mb

RELAY_MB = 1.0


def echo_models() -> list[dict]:
    return [{"id": "echo", "architecture": "echo", "max_concurrency": 16, "memory_mb": 20},
            {"id": "echo-q", "architecture": "echo", "memory_mb": 20}]


def _throughput(b, label: str, body: bytes, gateways: list, targets: list, duration: float, rounds: int) -> dict:
    """req/s per target in interleaved rounds; the gateways' peak RSS noted as it goes."""
    request = load.http_request("POST", "/v1/models/echo/infer", body)
    for _, target in targets:  # warm-up: workers spawned, connections and caches warm
        b.run(load.run(target, request, 16, b.n(1.0, 0.3), warmup=b.n(0.5, 0.1)))
    rps = {name: [] for name, _ in targets}
    peak = b.results.setdefault("gateway_rss_load_mb", {})
    for _ in range(rounds):
        for name, target in targets:
            result = b.run(load.run(target, request, 16, duration, warmup=0.2))
            b.check(f"{name} {label}", result)
            rps[name].append(result.rps)
            for g in gateways:
                if g.name == name:
                    peak[name] = max(peak.get(name) or 0, g.rss() or 0)
    return rps


def row1(b) -> None:
    b.say("row 1: echo through the gateway vs the single-hop limit, 16 connections, 100 B and 1 MB")
    gateways = [b.main] + b.variants
    targets = [("bare", b.bare.target())] + [(g.name, g.target()) for g in gateways]
    detail = b.results["rows"]["1_detail"] = {}
    bodies = [("100 B", inputs.ECHO_BODY, b.n(2.0, 0.4), b.n(3, 1)),
              (f"{RELAY_MB:g} MB", inputs.json_body(int(RELAY_MB * 1e6 if not b.smoke else 1e5)),
               b.n(3.0, 0.4), b.n(3, 1))]
    for label, body, duration, rounds in bodies:
        rps = _throughput(b, label, body, gateways, targets, duration, rounds)
        ratios = {g.name: median([a / c for a, c in zip(rps[g.name], rps["bare"])]) for g in gateways}
        detail[label] = {"rps": rps, "ratios": ratios, "body_bytes": len(body)}
        b.add(1, f"single-hop limit: bare uvicorn+FastAPI echo, {label}, 16 conn", round(median(rps["bare"])),
              "req/s")
        for g in gateways:
            name = f"gateway, echo infer, {label}, 16 conn" + ("" if g is b.main else f" [{g.name}]")
            b.add(1, name, round(median(rps[g.name])), "req/s", ">= 0.5x limit", ratios[g.name] >= 0.5,
                  f"{ratios[g.name]:.2f}x the limit ({min(a / c for a, c in zip(rps[g.name], rps['bare'])):.2f}-"
                  f"{max(a / c for a, c in zip(rps[g.name], rps['bare'])):.2f})")
    # The queued path: a model with max_concurrency 1 (every OCR model) behind 16 connections.
    queued = load.http_request("POST", "/v1/models/echo-q/infer", inputs.ECHO_BODY)
    duration = b.n(2.0, 0.4)
    b.run(load.run(b.main.target(), queued, 16, b.n(0.5, 0.2), warmup=0.2))
    q = b.run(load.run(b.main.target(), queued, 16, duration, warmup=0.2))
    b.check("echo-q", q)
    b.add(1, "  same, echo with max_concurrency 1 (queued)", round(q.rps), "req/s", None, None,
          f"{q.rps / median(detail['100 B']['rps']['bare']):.2f}x the limit")
    if wrk.available() and not b.smoke:
        found = wrk.cross_check(b.work, b.bare.port, b.main.port, inputs.ECHO_BODY)
        b.results["rows"]["1_wrk"] = found
        if found.get("bare") and found.get("main"):
            b.add(1, "  cross-check with wrk, 100 B: gateway vs limit", round(found["main"]), "req/s", None, None,
                  f"{found['main'] / found['bare']:.2f}x (limit {found['bare']:.0f} req/s)")


def row2(b) -> None:
    b.say("row 2: added latency, 1 connection: gateway vs the worker's own socket")
    request = load.http_request("POST", "/v1/models/echo/infer", inputs.ECHO_BODY)
    direct_req = load.http_request("POST", "/infer", inputs.ECHO_BODY, host="worker")
    gateways = [b.main] + b.variants
    socket = load.Target(unix=str(b.main.socket_of(b.main.workers("echo")[0])))
    duration, rounds = b.n(1.5, 0.3), b.n(3, 1)
    p50 = {name: [] for name in ["bare", "direct"] + [g.name for g in gateways]}
    for _ in range(rounds):
        for g in gateways:
            r = b.run(load.run(g.target(), request, 1, duration, warmup=0.2))
            b.check(g.name, r)
            p50[g.name].append(r.p50_ms)
        r = b.run(load.run(socket, direct_req, 1, duration, warmup=0.2))
        b.check("direct", r)
        p50["direct"].append(r.p50_ms)
        p50["bare"].append(b.run(load.run(b.bare.target(), request, 1, duration, warmup=0.2)).p50_ms)
    med = {k: median(v) for k, v in p50.items()}
    b.results["rows"]["2_detail"] = {"p50_ms": p50}
    for g in gateways:
        added = med[g.name] - med["direct"]
        label = "added latency p50, gateway - worker socket" + ("" if g is b.main else f" [{g.name}]")
        b.add(2, label, round(added, 3), "ms", "<= 0.4 ms", added <= 0.4,
              f"gateway {med[g.name]:.3f} ms, worker {med['direct']:.3f} ms, single hop {med['bare']:.3f} ms")


def row3(b) -> None:
    b.say("row 3: a 10 MiB image through /v1/ocr to echo vs a 100-byte one")
    small, big = inputs.small_png(), inputs.big_png(b.n(10.0, 2.0))
    gateways = [b.main] + b.variants
    reqs = {"small": inputs.ocr_request(small, "small.png", "echo-q"),
            "big": inputs.ocr_request(big, "big.png", "echo-q")}
    servers = [b.bare] + gateways
    lat = {(g.name, k): [] for g in servers for k in reqs}
    for g in servers:
        b.run(load.run_count(g.target(), reqs["small"], 2, warmup_count=2))
        b.run(load.run_count(g.target(), reqs["big"], 1, warmup_count=1))
    for _ in range(b.n(5, 1)):
        for g in servers:
            for kind, count in (("small", b.n(6, 2)), ("big", b.n(3, 1))):
                r = b.run(load.run_count(g.target(), reqs[kind], count, warmup_count=0))
                b.check(g.name if g is not b.main else f"/v1/ocr {kind}", r)
                lat[(g.name, kind)] += [x / 1000 for x in r.latencies_us]
    # The yardstick: writing the same number of bytes to a file in the data dir once.
    writes = []
    target = b.work / "bench-write.bin"
    for _ in range(b.n(7, 2)):
        t0 = time.perf_counter()
        with open(target, "wb") as f:
            f.write(big)
        writes.append((time.perf_counter() - t0) * 1000)
        target.unlink()
    write_ms = median(writes)
    b.results["rows"]["3_detail"] = {"latency_ms": {f"{x}/{y}": v for (x, y), v in lat.items()},
                                     "write_ms": writes, "big_bytes": len(big), "small_bytes": len(small)}
    floor = median(lat[("bare", "big")]) - median(lat[("bare", "small")])
    b.add(3, "  floor: bare uvicorn app streaming the same upload to a file", round(floor, 1), "ms", None,
          None, f"{floor / write_ms:.1f}x writing it once")
    for g in gateways:
        extra = median(lat[(g.name, "big")]) - median(lat[(g.name, "small")])
        label = f"extra time for {len(big) / 2**20:.0f} MiB vs {len(small)} B upload" + \
            ("" if g is b.main else f" [{g.name}]")
        b.add(3, label, round(extra, 1), "ms", "<= 2x one disk write", extra <= 2 * write_ms,
              f"{extra / write_ms:.1f}x writing it once ({write_ms:.1f} ms), {extra - floor:+.1f} ms over the floor")


def row8(b) -> None:
    idle = b.results.get("gateway_rss_idle_mb")
    peak = b.results.get("gateway_rss_load_mb", {}).get("main")
    b.add(8, "gateway RSS idle (after start)", idle, "MB", "<= 60 MB", idle is not None and idle <= 60,
          f"under load (row 1): {peak} MB" if peak else "")
    for g in b.variants:
        b.add(8, f"  gateway RSS idle [{g.name}]", b.results.get(f"rss_idle_{g.name}"), "MB")
    workers = b.main.workers("echo")
    if workers:
        rss = rss_mb(workers[0]["pid"])
        b.add(8, "echo worker RSS (the runtime, no model)", rss, "MB", "<= 20 MB", rss is not None and rss <= 20)
    spawned = b.results["rows"].get("5_detail", {}).get("rapidocr_ready_rss_mb")
    loaded = b.results["rows"].get("6_detail", {}).get("inproc_load_rss_mb")
    if spawned and loaded:
        # Both right after load + warm-up: the worker's ready line vs the same backend in-process.
        extra = round(spawned - loaded, 1)
        b.add(8, "rapidocr worker RSS at ready minus the model loaded in-process", extra, "MB", "<= 20 MB",
              extra <= 20, f"worker {spawned} MB, in-process {loaded} MB")
