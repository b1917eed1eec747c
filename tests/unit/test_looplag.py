"""The event-loop lag sampler sees a call that holds the loop, and starts only on a running loop."""

import asyncio
import time

from venvserve.system import looplag


def test_a_blocking_call_shows_as_one_late_wake_up():
    seen = []

    async def main():
        lag = looplag.LoopLag(seen.append)
        lag.ensure_running()
        lag.ensure_running()  # idempotent: one sampler task
        await asyncio.sleep(0.05)
        time.sleep(0.1)  # holds the loop
        await asyncio.sleep(0.05)
        return lag

    lag = asyncio.run(main())
    assert lag.max_s >= 0.1 - looplag.INTERVAL_S
    assert max(seen) == lag.max_s and len(seen) >= 2


def test_without_a_running_loop_it_waits_for_one():
    lag = looplag.LoopLag(lambda s: None)
    lag.ensure_running()
    assert lag._task is None and lag.max_s == 0.0
