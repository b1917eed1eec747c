"""How late the event loop runs a task that asked to wake: the loop's stalls, measured from inside.

A task sleeps ``INTERVAL_S`` over and over and records how much later than
asked it woke. Anything that holds the loop (a blocking call, a long
parse, a synchronous subprocess) shows up here as lateness, whichever
request or housekeeping step caused it. Exposed in ``/metrics`` as the
histogram ``venvserve_event_loop_lag_seconds`` and the gauge
``venvserve_event_loop_lag_max_seconds`` (the worst since start).
"""

import asyncio

INTERVAL_S = 0.01
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LoopLag:
    """Started on the running loop by ``ensure_running``; ``observe`` receives each lateness in seconds."""

    def __init__(self, observe):
        self.observe = observe
        self.max_s = 0.0
        self._task: asyncio.Task | None = None

    def ensure_running(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._run(loop), name="venvserve-looplag")

    async def _run(self, loop) -> None:
        while True:
            asked = loop.time() + INTERVAL_S
            await asyncio.sleep(INTERVAL_S)
            late = max(0.0, loop.time() - asked)
            self.max_s = max(self.max_s, late)
            self.observe(late)
