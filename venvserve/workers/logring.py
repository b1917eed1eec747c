"""Each model's worker output: a bounded ring of timestamped lines, readable and followable."""

import asyncio
import collections
import time
from dataclasses import dataclass
from typing import AsyncIterator


@dataclass(frozen=True)
class LogLine:
    time: float  # wall clock, seconds
    pid: int | None
    text: str

    def view(self) -> dict:
        return {"time": round(self.time, 3), "pid": self.pid, "text": self.text}


class LogRing:
    """The last ``size`` lines of one model's workers; followers get new lines as they come."""

    def __init__(self, size: int):
        self.lines: collections.deque[LogLine] = collections.deque(maxlen=size)
        self.written = 0  # lines ever appended: a follower's position survives the ring turning
        self._followers: set[asyncio.Event] = set()

    def append(self, pid: int | None, text: str) -> None:
        self.lines.append(LogLine(time.time(), pid, text))
        self.written += 1
        for wake in self._followers:
            wake.set()

    def tail(self, n: int) -> list[LogLine]:
        return list(self.lines)[-n:] if n > 0 else []

    async def follow(self, start_tail: int = 0) -> AsyncIterator[LogLine]:
        """The last ``start_tail`` lines, then every new line, until the caller stops iterating."""
        seen = self.written - min(start_tail, len(self.lines))
        wake = asyncio.Event()
        self._followers.add(wake)
        try:
            while True:
                missed = self.written - seen
                if missed > 0:
                    # A slow follower skips what the ring has already dropped.
                    batch, seen = list(self.lines)[-min(missed, len(self.lines)):], self.written
                    for line in batch:
                        yield line
                    continue
                wake.clear()
                await wake.wait()
        finally:
            self._followers.discard(wake)
