"""A small pool of decoder processes shared by every request of the gateway (or the Ray ingress).

    pool = DecoderPool(size=4, limits=DecoderLimits(...), cwd=run_dir)
    info = await pool.check_image(path)            # {"format", "width", "height"}
    count = await pool.count_pages(path, 200)      # 400 invalid_pdf / too_many_pages
    page = await pool.render(path, 0, out, 200)    # {"path", "dpi", "width", "height"}
    await pool.release(path)                       # decoders holding the PDF close it
    await pool.close()

Each call takes one decoder for one step; pages of one PDF (or of several)
therefore render in parallel processes, up to ``size``. A call prefers a
decoder that already holds its PDF open. Decoders start on first need and
stay (retired after ``RECYCLE_AFTER`` steps); one that dies (crash, memory
or CPU limit, wall-clock timeout, garbage on its pipe) fails only the call
it was serving, with the error ``limits.death_error`` picks, and the next
call starts a fresh one.

A caller cancelled mid-step (its client left) does not kill the decoder: the
step finishes in the background under its timeout, then the decoder goes
back to the pool, so a cancelled request costs at most one step per decoder.
The pool is the only writer of its decoders' bookkeeping.
"""

import asyncio
import logging
from pathlib import Path

from ..errors import InsufficientStorage, Unavailable, VenvserveError
from .limits import DecoderLimits, death_error
from .process import DecoderDied, DecoderProcess

log = logging.getLogger("venvserve")

# A decoder is retired after this many steps: whatever a library leaks or
# fragments over thousands of hostile documents goes with the process.
RECYCLE_AFTER = 2000


class DecoderPool:
    def __init__(self, size: int, limits: DecoderLimits, cwd: Path | None = None):
        self.size = size
        self.limits = limits
        self.cwd = cwd
        self._slots = asyncio.Semaphore(size)
        self._idle: list[DecoderProcess] = []
        self._busy: set[DecoderProcess] = set()
        self._closed = False
        self.started = 0  # decoders spawned so far
        self.deaths = 0  # decoders lost to a crash, a limit or a timeout

    # -- the steps ---------------------------------------------------------

    async def check_image(self, path: Path) -> dict:
        return await self._call("image", {"op": "image", "path": str(path),
                                          "max_pixels": self.limits.max_page_pixels})

    async def count_pages(self, path: Path, max_pages: int) -> int:
        answer = await self._call("pdf", {"op": "pdf", "path": str(path), "max_pages": max_pages},
                                  document=str(path))
        return int(answer["pages"])

    async def render(self, path: Path, index: int, out: Path, dpi: float) -> dict:
        return await self._call("pdf", {"op": "render", "path": str(path), "index": index, "out": str(out),
                                        "dpi": dpi, "max_pixels": self.limits.max_page_pixels},
                                document=str(path))

    async def release(self, path: Path) -> None:
        """Idle decoders holding this PDF close it now if a slot is free (its file is about to go);
        any other decoder closes it when it next opens a document."""
        for decoder in [d for d in self._idle if d.document == str(path)]:
            if self._slots.locked() or decoder not in self._idle:
                return
            await self._slots.acquire()
            self._idle.remove(decoder)
            step = asyncio.ensure_future(self._close_document(decoder))
            step.add_done_callback(_consume)
            await asyncio.shield(step)

    async def _close_document(self, decoder: DecoderProcess) -> None:
        self._busy.add(decoder)
        try:
            await decoder.request({"op": "close"}, self.limits.timeout_s)
            decoder.document = None
        except DecoderDied:
            self._drop(decoder)
            decoder = None
        finally:
            self._give_back(decoder)

    async def close(self) -> None:
        self._closed = True
        decoders = self._idle + list(self._busy)
        self._idle, self._busy = [], set()
        await asyncio.gather(*(d.close() for d in decoders), return_exceptions=True)

    def stats(self) -> dict:
        """For status pages and metrics: processes now, and since start."""
        return {"size": self.size, "idle": len(self._idle), "busy": len(self._busy), "started": self.started,
                "deaths": self.deaths}

    def pids(self) -> list[int]:
        return [d.pid for d in self._idle + list(self._busy) if d.alive]

    # -- plumbing ----------------------------------------------------------

    async def _call(self, kind: str, message: dict, document: str | None = None) -> dict:
        if self._closed:
            raise Unavailable("the server is shutting down", code="shutting_down")
        await self._slots.acquire()
        step = asyncio.ensure_future(self._step(kind, message, document))
        step.add_done_callback(_consume)
        answer = await asyncio.shield(step)  # a cancelled caller leaves the step to finish on its own
        if not answer["ok"]:
            cls = InsufficientStorage if answer.get("status") == 507 else VenvserveError
            raise cls(answer.get("message") or "the document cannot be decoded", code=answer.get("code"),
                      hint=answer.get("hint"), status=int(answer.get("status") or 400))
        return answer

    async def _step(self, kind: str, message: dict, document: str | None) -> dict:
        """One request on one decoder, alone on it; the slot taken by ``_call`` is freed here, whatever happens."""
        decoder = None
        try:
            decoder = self._take(document)
            if decoder is None:
                decoder = await self._spawn()
            self._busy.add(decoder)
            try:
                answer = await decoder.request(message, self.limits.timeout_s)
            except DecoderDied as exc:
                self._drop(decoder)
                decoder = None
                self.deaths += 1
                log.warning("decoder stopped on a %s (%s); a fresh one takes the next document", kind, exc)
                raise death_error(kind, exc.returncode, exc.timed_out, self.limits) from None
            if message["op"] in ("pdf", "render"):
                decoder.document = document
            return answer
        finally:
            self._give_back(decoder)

    def _give_back(self, decoder: DecoderProcess | None) -> None:
        """The end of every step: the decoder back to the idle list (or ended), its slot freed."""
        if decoder is not None:
            self._busy.discard(decoder)
            if self._closed or decoder.requests >= RECYCLE_AFTER:
                asyncio.ensure_future(decoder.close())
            else:
                self._idle.append(decoder)
        self._slots.release()

    def _take(self, document: str | None) -> DecoderProcess | None:
        """An idle decoder: one holding this document, else one holding none, else any."""
        self._idle = [d for d in self._idle if d.alive]
        for wanted in (document, None):
            for decoder in self._idle:
                if decoder.document == wanted:
                    self._idle.remove(decoder)
                    return decoder
        return self._idle.pop() if self._idle else None

    async def _spawn(self) -> DecoderProcess:
        try:
            decoder = await DecoderProcess.spawn(self.limits, self.cwd)
        except (OSError, DecoderDied) as exc:
            log.error("a document decoder cannot start: %s", exc)
            raise Unavailable("a document decoder cannot start; the server log says why",
                              code="decoder_unavailable") from None
        self.started += 1
        return decoder

    def _drop(self, decoder: DecoderProcess) -> None:
        self._busy.discard(decoder)
        if decoder in self._idle:
            self._idle.remove(decoder)


def _consume(task: asyncio.Task) -> None:
    # The step's error belongs to the caller; if the caller left, nobody reads it: mark it read.
    if not task.cancelled():
        task.exception()
