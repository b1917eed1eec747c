"""What a job needs of the OCR pipeline, in three calls: inspect a file, render one page, OCR one page.

The scheduler sees only this seam. The steps are ``venvserve.ocr``'s, the
ones ``POST /v1/ocr`` runs: documents are read only in decoder processes,
page by page as they are needed, and a page reaches a worker through the
supervisor like any interactive page (with its page number, for backends
that care).
"""

from pathlib import Path

from .. import ocr


class Pages:
    def __init__(self, gw):
        self.gw = gw

    async def inspect(self, path: Path, size: int) -> tuple[str, int]:
        """The file's kind (``pdf`` or ``image``) and page count, with ``/v1/ocr``'s errors for bad input."""
        doc = await ocr.open_document(self.gw.decoders, path, size, self.gw.settings.max_job_pages)
        await ocr.release(self.gw.decoders, doc)
        return doc.kind, doc.pages

    async def render(self, path: Path, kind: str, page: int, out_dir: Path, model_id: str) -> "ocr.Page":
        """Page ``page`` (1-based) ready for ``model_id``'s worker, at that model's render dpi.

        The dpi is looked up in the catalog at each page, so a job resumed after a restart
        renders its remaining pages at what the job's model asks for now.
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        doc = ocr.Document(path, kind, page)
        dpi = self.gw.catalog.require(model_id).render_dpi(self.gw.settings.pdf_dpi)
        return await ocr.render_page(self.gw.decoders, doc, page - 1, out_dir, dpi)

    async def ocr(self, model_id: str, page: "ocr.Page", fmt: str, options: dict) -> dict:
        """``{"text": ...}`` for one page; a rendered page's file is removed afterwards."""
        async def call(request: dict) -> dict:
            return await self.gw.supervisor.infer(model_id, {**request, "page": page.number})

        answer = await ocr.ocr_page(call, page, fmt, options)
        return {"text": answer["text"]}

    async def done(self, path: Path, kind: str) -> None:
        """The job no longer needs this file: decoders holding it open let it go."""
        await ocr.release(self.gw.decoders, ocr.Document(path, kind, 0))
