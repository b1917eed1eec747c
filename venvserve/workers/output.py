"""A worker's stdout/stderr, read in chunks and cut into bounded, printable lines.

Real models print `\\r`-only progress bars, megabyte-long warnings, binary
and bursts of thousands of tracebacks. The pump reads whatever has arrived
(never a line at a time, so no line length can stop it), cuts lines at `\\n`
or `\\r`, cuts any line past MAX_LINE_CHARS, escapes control characters,
keeps a tail for crash reports, and hands every line to the model's log ring.
The gateway's own log gets at most LOG_LINES_PER_S lines a second per worker.
"""

import asyncio
import collections
import logging
import re
import time
from typing import Callable

log = logging.getLogger("venvserve.workers")

CHUNK_BYTES = 64 * 1024
MAX_LINE_CHARS = 4096  # longer lines are cut, with a note of how much was left out
TAIL_LINES = 60
LOG_LINES_PER_S = 50

_LINE_END = re.compile(rb"\r\n|\r|\n")
# C0 and C1 controls (tab excepted) and DEL become visible \xNN escapes.
_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0a, 0x20), *range(0x7f, 0xa0)]}


def printable(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").translate(_ESCAPES)


class OutputPump:
    def __init__(self, name: str, on_line: Callable[[str], None] | None = None, tail_lines: int = TAIL_LINES):
        self.name = name
        self.on_line = on_line
        self.lines: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self.total = 0  # lines seen
        self._partial = bytearray()
        self._cut = 0  # bytes dropped from the line being read (0: not cutting)
        self._window = 0.0
        self._logged = 0
        self._skipped = 0

    def tail(self, n: int = 15) -> list[str]:
        return list(self.lines)[-n:] if n > 0 else []

    async def pump(self, stream: asyncio.StreamReader) -> None:
        """Read until EOF; no error in a chunk stops it."""
        while True:
            try:
                chunk = await stream.read(CHUNK_BYTES)
            except Exception as exc:  # a broken pipe ends the output, nothing else does
                log.warning("%s: output pump stopped: %r", self.name, exc)
                break
            if not chunk:
                break
            try:
                self.feed(chunk)
            except Exception:
                log.exception("%s: could not read a chunk of worker output", self.name)
        self.close()

    def feed(self, chunk: bytes) -> None:
        parts = _LINE_END.split(chunk)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if self._cut:
                self._cut += len(part)
            elif len(self._partial) + len(part) > MAX_LINE_CHARS * 4:
                room = MAX_LINE_CHARS * 4 - len(self._partial)
                self._partial += part[:room]
                self._cut = len(part) - room
            else:
                self._partial += part
            if not last:
                self._end_line()

    def close(self) -> None:
        """End of output: what is left is the last line."""
        if self._partial or self._cut:
            self._end_line()
        self._flush_skipped()

    def note(self, text: str) -> None:
        """A line of the gateway's own about this worker, kept with its output."""
        self._line(f"[venvserve] {text}", force_log=True)

    def _end_line(self) -> None:
        text = printable(bytes(self._partial))
        cut = self._cut + max(0, len(text) - MAX_LINE_CHARS)
        self._partial.clear()
        self._cut = 0
        if cut:
            text = f"{text[:MAX_LINE_CHARS]}… ({cut} more bytes)"
        if text.strip():
            self._line(text)

    def _line(self, text: str, force_log: bool = False) -> None:
        self.total += 1
        self.lines.append(text)
        if self.on_line is not None:
            self.on_line(text)
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._flush_skipped()
            self._window, self._logged = now, 0
        if self._logged < LOG_LINES_PER_S or force_log:
            self._logged += 1
            log.info("[%s] %s", self.name, text)
        else:
            self._skipped += 1

    def _flush_skipped(self) -> None:
        if self._skipped:
            log.info("[%s] (%d more lines not shown here; all are in the model's log)", self.name, self._skipped)
            self._skipped = 0
