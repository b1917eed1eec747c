"""The OCR pipeline: an uploaded file in, the answer's JSON out, for the gateway and the Ray ingress.

Rooms: ``options`` (FORMATS, RESERVED_KEYS, ``parse_options``, ``check_format``),
``classify`` (what a file is, by its first bytes), ``pages`` (a document's
pages, one at a time), ``layout`` (the answer from per-page results),
``pipeline`` (one interactive request: pages rendered and OCR'd as a pipeline,
cancelled when the client leaves).

Nothing here decodes a document: bytes are read only by the decoder pool
(``venvserve.decode``) given as ``decoders``, and pages reach a model only
through ``call``, the "call one page" function a caller supplies (the
gateway's calls its local workers; the Ray ingress calls a deployment).

Using the steps one at a time (a scheduler that runs pages on its own terms):

    doc = await open_document(decoders, path, size, max_pages)    # (a) doc.pages; 4xx if unusable
    page = await render_page(decoders, doc, i, work_dir, dpi)      # (b) page i (0-based), on demand
    result = await ocr_page(call, page, fmt, options)              # (c) {"page": i + 1, "text": ...}
    # a page that failed for good:  result = page_error(i + 1, exc)  → {"page", "error": {"code", "message"}}
    answer = layout(model_id, fmt, results)                        # (d) {"model", "format", "text", "pages"}
    await release(decoders, doc)                                   # decoders drop the open PDF

The worker request for one page (built by ``page_request``):
``{"task": "ocr", "images": [path], "format": fmt, "options": {...}, "dpi": d}``,
``dpi`` only for PDF pages (the dpi the page was rendered at, lowered for
huge pages so that no page exceeds ``max_page_pixels``). ``ocr_page``
deletes a rendered page's file once the call returns, whatever it answers.

Or the whole request at once: ``await pipeline.run(decoders, call, path,
size, work_dir, model_id=..., fmt=..., options=..., dpi=..., max_pages=...,
concurrency=..., disconnected=...)`` answers ``/v1/ocr``'s JSON with
``timing_ms``.
"""

from .classify import PDF, UnsupportedMedia, classify, sniff
from .layout import layout, page_error
from .options import FORMATS, RESERVED_KEYS, check_format, check_reserved, parse_options
from .pages import CallPage, Document, Page, ocr_page, open_document, page_request, release, render_page
from .pipeline import run

__all__ = ["PDF", "UnsupportedMedia", "classify", "sniff", "layout", "page_error", "FORMATS", "RESERVED_KEYS",
           "check_format", "check_reserved", "parse_options", "CallPage", "Document", "Page", "ocr_page",
           "open_document", "page_request", "release", "render_page", "run"]
