"""Row 10: eviction damping: three busy models sharing two slots, evictions per minute.

Three echo models, each with a small load time, behind ``--max-loaded-models
2``; one client per model sends a 20 ms request, pauses 50 ms and sends
the next, for a bounded time. Every load of the third model needs a slot, so an undamped
gateway evicts on almost every request; a damped one keeps a model just
loaded for ``min_residency_s`` (unless it has served) and never evicts a
model with requests in flight or queued: a request for the third model
waits for room instead. Counted from ``venvserve_worker_events_total``
(``event="evicted"``), which both old and new trees export.
"""

import asyncio
import json
import time

from . import load
from .report import median
from .servers import Gateway

MODELS = ("busy-a", "busy-b", "busy-c")
LOAD_S = 0.3
REQUEST = json.dumps({"text": "busy", "sleep_s": 0.02}).encode()  # 20 ms on the worker
THINK_S = 0.05  # each model's client pauses 50 ms between answers: busy, yet idle at moments


async def busy(gw: Gateway, duration: float) -> dict[str, load.Result]:
    runs = [load.run(gw.target(), load.http_request("POST", f"/v1/models/{m}/infer", REQUEST), 1, duration,
                     warmup=0, max_requests=200_000, timeout=120, think=THINK_S) for m in MODELS]
    return dict(zip(MODELS, await asyncio.gather(*runs)))


def row10(b) -> None:
    b.say("row 10: three busy models, two slots: evictions per minute")
    catalog = b.catalog([{"id": m, "architecture": "echo", "memory_mb": 20, "options": {"load_s": LOAD_S}}
                         for m in MODELS], "catalog-evict")
    trees = [("main", None)] + [(label, b.source(label, kind, value)) for label, kind, value in b.args.variants]
    duration, rounds = b.n(60.0, 4.0), b.n(3, 1)
    per_min = {name: [] for name, _ in trees}
    detail = {name: [] for name, _ in trees}
    for _ in range(rounds):
        for name, src in trees:
            gw = Gateway(f"evict-{name}", b.work, catalog, b.work / f"data-evict-{name}", src,
                         extra=("--max-loaded-models", "2")).start()
            try:
                before = gw.metric("venvserve_worker_events_total", event="evicted")
                spawned = gw.metric("venvserve_worker_events_total", event="spawned")
                t0 = time.monotonic()
                results = b.run(busy(gw, duration))
                seconds = time.monotonic() - t0
                evicted = gw.metric("venvserve_worker_events_total", event="evicted") - before
                spawned = gw.metric("venvserve_worker_events_total", event="spawned") - spawned
            finally:
                gw.stop()
            per_min[name].append(evicted / seconds * 60)
            detail[name].append({"seconds": round(seconds, 1), "evicted": evicted, "spawned": spawned,
                                 "requests": {m: r.requests for m, r in results.items()},
                                 "statuses": {m: r.statuses for m, r in results.items()}})
    b.results["rows"]["10_detail"] = detail
    for name, _ in trees:
        served = median([sum(d["requests"].values()) / d["seconds"] for d in detail[name]])
        errors = sum(sum(n for s, n in st.items() if s >= 400) for d in detail[name] for st in d["statuses"].values())
        label = "evictions/min, 3 busy models in 2 slots" + ("" if name == "main" else f" [{name}]")
        b.add(10, label, round(median(per_min[name]), 1), "/min", None, None,
              f"{min(per_min[name]):.0f}-{max(per_min[name]):.0f} over {rounds} rounds of {duration:.0f} s; "
              f"{served:.0f} req/s served, {errors} error answers")
