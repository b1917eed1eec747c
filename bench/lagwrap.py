"""``venvserve serve`` with an event-loop lag probe, for any source tree (this one or an older one).

    BENCH_LAG_FILE=lag.txt python bench/lagwrap.py serve --port 8000 ...

The same probe as venvserve/system/looplag.py, added from outside so a tree
without one is measured the same way: a task sleeps 10 ms over and over, and
every wake-up more than 2 ms late is appended to BENCH_LAG_FILE as
``<unix time> <seconds late> <seconds runnable>``. The bench reads the lines
inside its storm's window.

On a machine shared with other work, part of a late wake-up is the kernel
not giving the loop's thread a CPU at all. The probe reads the thread's
run-queue wait (``/proc/thread-self/schedstat``, field 2) around each sleep,
so ``late - runnable`` is the time the loop was held by the gateway itself:
its callbacks, a blocking call, a wait for the GIL. Which tree runs is the interpreter's path (PYTHONPATH), as for any
gateway the bench starts.
"""

import asyncio
import os
import runpy
import sys
import time

import uvicorn

INTERVAL_S = 0.01
REPORT_OVER_S = 0.002


def runnable_s() -> float:
    """Seconds this thread has waited on a run queue for a CPU (0 where the kernel does not say)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


async def probe(path: str) -> None:
    loop = asyncio.get_running_loop()
    with open(path, "a", buffering=1) as out:
        out.write(f"{time.time():.6f} 0.000000 0.000000 start\n")
        while True:
            waited = runnable_s()
            asked = loop.time() + INTERVAL_S
            await asyncio.sleep(INTERVAL_S)
            late = loop.time() - asked
            if late > REPORT_OVER_S:
                out.write(f"{time.time():.6f} {late:.6f} {runnable_s() - waited:.6f}\n")


def main() -> None:
    path = os.environ["BENCH_LAG_FILE"]
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)  # bench/ itself: its modules must not shadow anything the gateway imports
    serve = uvicorn.Server.serve

    async def serve_with_probe(self, *args, **kwargs):
        task = asyncio.get_running_loop().create_task(probe(path))
        try:
            return await serve(self, *args, **kwargs)
        finally:
            task.cancel()

    uvicorn.Server.serve = serve_with_probe
    sys.argv = ["venvserve", *sys.argv[1:]]
    runpy.run_module("venvserve.cli", run_name="__main__", alter_sys=True)


def stalls(path, since: float, until: float) -> list[tuple[float, float]]:
    """(seconds late, of which runnable without a CPU) for the wake-ups the probe wrote between two unix times."""
    found = []
    with open(path) as f:
        for line in f:
            stamp, late, runnable, *_ = line.split()
            if since <= float(stamp) <= until:
                found.append((float(late), float(runnable)))
    return found


if __name__ == "__main__":
    main()
