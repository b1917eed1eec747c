"""The bench's output: the machine it ran on, the table on stdout, the JSON result file."""

import contextlib
import json
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic", "python-multipart",
            "pillow", "pypdfium2", "uv")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


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
    for dist in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    info["packages"] = versions
    info["loadavg_start"] = os.getloadavg()
    return info


def describe_machine(m: dict, seconds: float) -> str:
    return (f"machine: {m.get('cpu', '?')}, {m['cores']} cores, {m.get('memory_gb', '?')} GB, Python {m['python']}, "
            f"load average {m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}; {seconds} s")


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


def write(results: dict, out: Path, smoke: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}{'-smoke' if smoke else ''}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    return path
