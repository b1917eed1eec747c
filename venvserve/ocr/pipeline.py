"""One interactive OCR request, end to end: check the document, then render and OCR its pages
as a pipeline, and lay out the answer.

Page n is OCR'd while page n+1 renders in another decoder: at most
``concurrency`` pages are with workers at once, and at most ``concurrency +
decoders.size`` pages are begun (rendering or OCR), so a long PDF is never
rendered far ahead of what the workers read (its pages are deleted once read).
A page that fails fails the request, and the other pages stop. When the
client leaves (``disconnected()`` turns true, polled), every page task is
cancelled: nothing more is rendered or sent to a worker.
"""

import asyncio
import time
from pathlib import Path
from typing import Awaitable, Callable

from ..errors import ClientGone
from .layout import layout
from .pages import CallPage, Document, ocr_page, open_document, release, render_page

POLL_S = 0.25  # how often a request asks whether its client is still there


async def run(decoders, call: CallPage, path: Path, size: int, work_dir: Path, *, model_id: str, fmt: str,
              options: dict, dpi: float, max_pages: int, concurrency: int,
              disconnected: Callable[[], Awaitable[bool]] | None = None) -> dict:
    """The ``/v1/ocr`` answer for one uploaded file, with ``timing_ms`` (decode: until the first page is ready; inference; total)."""
    t0 = time.perf_counter()

    async def work() -> dict:
        doc = await open_document(decoders, path, size, max_pages)
        try:
            results, first_ready = await ocr_pages(decoders, call, doc, work_dir, fmt, options, dpi, concurrency)
        finally:
            await release(decoders, doc)
        t2 = time.perf_counter()
        answer = layout(model_id, fmt, results)
        answer["timing_ms"] = {"decode": _ms(first_ready - t0), "inference": _ms(t2 - first_ready),
                               "total": _ms(t2 - t0)}
        return answer

    return await until_disconnected(work(), disconnected)


async def ocr_pages(decoders, call: CallPage, doc: Document, work_dir: Path, fmt: str, options: dict,
                    dpi: float, concurrency: int) -> tuple[list[dict], float]:
    """Every page's result in order, and when the first page was ready for a worker."""
    gate = asyncio.Semaphore(concurrency)
    window = asyncio.Semaphore(concurrency + getattr(decoders, "size", 1))
    first_ready: list[float] = []
    failed = asyncio.Event()

    async def one(index: int) -> dict:
        try:
            page = await render_page(decoders, doc, index, work_dir, dpi)
            first_ready.append(time.perf_counter())
            async with gate:
                return await ocr_page(call, page, fmt, options)
        except BaseException:
            failed.set()
            raise
        finally:
            window.release()

    tasks: list[asyncio.Task] = []
    try:
        for index in range(doc.pages):
            await window.acquire()
            if failed.is_set():
                window.release()
                break
            tasks.append(asyncio.ensure_future(one(index)))
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return list(results), min(first_ready)


async def until_disconnected(work, disconnected):
    """Await ``work``; if ``disconnected()`` turns true first, cancel it and raise ClientGone."""
    if disconnected is None:
        return await work
    main = asyncio.ensure_future(work)

    async def watch() -> None:
        try:
            while not await disconnected():
                await asyncio.sleep(POLL_S)
        except Exception:  # the question cannot be asked: carry on as if the client were there
            await asyncio.Event().wait()

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({main, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not main.done():
            main.cancel()
            await asyncio.gather(main, return_exceptions=True)
    if main.cancelled():
        raise ClientGone("the client closed the connection; its pages were cancelled")
    return main.result()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
