"""venvserve's benchmark: one command, one table, ratios measured side by side.

    python -m bench                      # the full run (~10 minutes), table + bench/results/*.json
    python -m bench --rows 1,2,3,8       # the gateway rows only (~1 minute)
    python -m bench --rows 9,10          # event-loop stalls, eviction damping
    python -m bench --compare REF        # also run a gateway from git REF beside this tree (rows 1-3, 8-10)
    python -m bench --patch FILE.diff    # ... and one from this tree with FILE applied (a proposal)
    python -m bench --smoke              # a few iterations of the cheap rows (the test suite runs this)

Everything runs on this machine, on loopback and Unix sockets, with one load
generator (bench/load.py, a bounded asyncio client) for every row; wrk, when
installed, cross-checks row 1 (bench/wrk.py). Every figure is compared with
its baseline in the same run, in interleaved rounds after a warm-up, and
reported as medians: on a small shared machine absolute numbers swing 2x
between runs, ratios measured side by side do not.

The rows live by job: rows_gateway.py (1-3, 8: throughput, latency, uploads,
memory), rows_envs.py (4-7: envs, spawn, OCR), stalls.py (9), eviction.py
(10); servers.py starts what they measure, report.py prints and writes.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import eviction, load, report, rows_envs, rows_gateway, stalls
from .servers import ROOT, Bare, Gateway, variant_tree

RESULTS = ROOT / "bench" / "results"
ALL_ROWS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
SMOKE_ROWS = (1, 2, 3, 5, 8, 9, 10)
ROWS = {1: rows_gateway.row1, 2: rows_gateway.row2, 3: rows_gateway.row3, 5: rows_envs.row5,
        6: rows_envs.row6, 7: rows_envs.row7, 8: rows_gateway.row8, 9: stalls.row9, 10: eviction.row10}


class Bench:
    """What every row shares: the work dir, the loop, the servers, the table being filled."""

    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.rows = set(args.rows)
        self.work = Path(tempfile.mkdtemp(prefix="vsb-"))
        self.results: dict = {"machine": report.machine(), "args": vars(args) | {"rows": sorted(self.rows)},
                              "rows": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.table: list[dict] = []
        self.loop = load.new_loop()
        asyncio.set_event_loop(self.loop)
        self.gateways: list[Gateway] = []  # [main] once started
        self.variants: list[Gateway] = []
        self.sources: dict[str, Path] = {}  # variant name → its source tree
        self.bare: Bare | None = None
        self.inproc: subprocess.Popen | None = None
        self.env_python: Path | None = None
        self.gw_data = self.work / "data-gw"

    def n(self, full, smoke):
        """A knob: the smoke run does a few iterations of each."""
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

    def check(self, what: str, result: load.Result) -> None:
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

    def catalog(self, models: list[dict], name: str) -> Path:
        path = self.work / f"{name}.json"
        path.write_text(json.dumps(models))
        return path

    # -- the shared servers ---------------------------------------------------------

    @property
    def main(self) -> Gateway:
        return self.gateways[0]

    def source(self, label: str, kind: str, value) -> Path:
        if label not in self.sources:
            self.sources[label] = variant_tree(self.work, label, **{kind: value})
        return self.sources[label]

    def start_gateways(self) -> None:
        models = rows_gateway.echo_models()
        if self.rows & {6, 7}:
            models += rows_envs.ocr_models()
        main = Gateway("main", self.work, self.catalog(models, "catalog"), self.gw_data).start()
        self.gateways.append(main)
        self.results["gateway_rss_idle_mb"] = main.rss()
        echo_catalog = self.catalog(rows_gateway.echo_models(), "catalog-echo")
        for label, kind, value in self.args.variants:
            gw = Gateway(label, self.work, echo_catalog, self.work / f"data-{label}",
                         self.source(label, kind, value)).start()
            self.variants.append(gw)
            self.results[f"rss_idle_{label}"] = gw.rss()
        self.bare = Bare(self.work).start()

    def close(self) -> None:
        if self.inproc and self.inproc.poll() is None:
            with contextlib.suppress(OSError, BrokenPipeError):
                self.inproc.stdin.write("quit\n")
                self.inproc.stdin.flush()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.inproc.wait(10)
        for gw in self.gateways + self.variants:
            gw.stop()
        if self.bare:
            self.bare.stop()
        self.loop.close()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    def execute(self) -> None:
        t0 = time.monotonic()
        if 4 in self.rows:
            rows_envs.row4(self)
        if self.rows & {5, 6, 7} and not self.smoke:
            rows_envs.ensure_env(self)
        if self.rows & {1, 2, 3, 6, 7, 8}:
            self.start_gateways()
        for row in sorted(self.rows - {4}):
            if row in (6, 7) and not self.env_python:
                continue
            ROWS[row](self)
        self.results["seconds"] = round(time.monotonic() - t0, 1)
        self.results["machine"]["loadavg_end"] = os.getloadavg()
        self.results["table"] = self.table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(map(str, ALL_ROWS)), help="which rows to run (default: all)")
    parser.add_argument("--smoke", action="store_true", help="a few iterations of rows 1-3, 5, 8-10 (for tests)")
    parser.add_argument("--no-pip", action="store_true", help="row 4 without the venv+pip comparison (~45 s less)")
    parser.add_argument("--compare", action="append", default=[], metavar="REF",
                        help="also measure a gateway from git REF (rows 1-3, 8-10), side by side")
    parser.add_argument("--patch", action="append", default=[], metavar="DIFF",
                        help="also measure a gateway from this tree with DIFF applied")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON result")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data dirs)")
    args = parser.parse_args(argv)
    args.rows = sorted({int(r) for r in args.rows.split(",") if r.strip()})
    if unknown := set(args.rows) - set(ALL_ROWS):
        parser.error(f"no row {sorted(unknown)}: rows are {', '.join(map(str, ALL_ROWS))}")
    if args.smoke:
        args.rows = [r for r in args.rows if r in SMOKE_ROWS]
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
    print("\n" + report.describe_machine(bench.results["machine"], bench.results["seconds"]) + "\n")
    print(report.format_table(bench.table))
    print(f"\nresult: {report.write(bench.results, args.out, args.smoke)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
