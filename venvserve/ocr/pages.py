"""A document's pages, one at a time: open (count), render page i, OCR one page.

Every step that reads the document's bytes runs in a decoder process (the
``decoders`` argument: a ``venvserve.decode.pool.DecoderPool`` or anything
with its ``check_image``/``count_pages``/``render``/``release``).
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from .classify import PDF, classify

# The "call one page" seam: a worker request in, the worker's answer out.
# ``{"task": "ocr", "images": [path], "format", "options"[, "dpi"]}`` → ``{"pages": [{"text": ...}]}``
CallPage = Callable[[dict], Awaitable[dict]]


@dataclass(frozen=True)
class Document:
    path: Path
    kind: str  # "image" or "pdf"
    pages: int


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    path: Path  # the image a worker reads
    dpi: float | None  # what a PDF page was rendered at (lowered for huge pages); None for an image
    rendered: bool  # a file of ours (deleted after its OCR), not the upload itself


async def open_document(decoders, path: Path, size: int, max_pages: int) -> Document:
    """Classify the upload by its bytes, then check it in a decoder: an image's format and size,
    a PDF's page count. Raises the client's error (400/413/415/422) for anything unusable."""
    if classify(path, size) == PDF:
        return Document(path, "pdf", await decoders.count_pages(path, max_pages))
    await decoders.check_image(path)
    return Document(path, "image", 1)


async def render_page(decoders, doc: Document, index: int, work_dir: Path, dpi: float) -> Page:
    """Page ``index`` (0-based) as an image file in ``work_dir``; an image document is its own page."""
    if doc.kind == "image":
        return Page(1, doc.path, None, False)
    answer = await decoders.render(doc.path, index, work_dir / f"page-{index + 1:05d}.png", dpi)
    return Page(index + 1, Path(answer["path"]), float(answer["dpi"]), True)


def page_request(page: Page, fmt: str, options: dict) -> dict:
    request = {"task": "ocr", "images": [str(page.path)], "format": fmt, "options": options}
    if page.dpi is not None:
        request["dpi"] = page.dpi
    return request


async def ocr_page(call: CallPage, page: Page, fmt: str, options: dict) -> dict:
    """``{"page": n, "text": ...}`` for one page; a rendered page's file is removed afterwards."""
    try:
        answer = await call(page_request(page, fmt, options))
    finally:
        if page.rendered:
            discard(page.path)
    result = answer["pages"][0]
    out = {"page": page.number, "text": result["text"]}
    if isinstance(result.get("device"), str):  # engines that pick their device say which ran
        out["device"] = result["device"][:32]
    return out


async def release(decoders, doc: Document) -> None:
    """The document is done with: decoders holding it open close it."""
    if doc.kind == "pdf":
        await decoders.release(doc.path)


def discard(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
