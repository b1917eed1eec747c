"""The answer to an OCR request, from its pages' results in page order."""

from ..errors import VenvserveError


def page_error(number: int, exc: VenvserveError) -> dict:
    """A page that failed for good: it carries its error instead of text."""
    return {"page": number, "error": {"code": exc.code, "message": exc.message}}


def layout(model_id: str, fmt: str, pages: list[dict]) -> dict:
    """``{"model", "format", "text", "pages"}``: the text of every page that has one, pages apart
    by a blank line (markdown always, text when there are several)."""
    pages = sorted(pages, key=lambda p: p["page"])
    texts = [p["text"] for p in pages if "text" in p]
    joiner = "\n\n" if fmt == "markdown" or len(pages) > 1 else ""
    text = joiner.join(texts) if joiner else (texts[0] if texts else "")
    return {"model": model_id, "format": fmt, "text": text, "pages": pages}
