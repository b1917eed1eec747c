"""A job's answer: per file the shape ``POST /v1/ocr`` answers, or all files as one document."""

from ..ocr.layout import layout


def per_file(name: str, model: str, fmt: str, results: list[dict | None]) -> dict:
    """Pages in order; a page that failed for good carries its error, a pending one is left out."""
    pages = [{"page": number, **result} for number, result in enumerate(results, start=1) if result is not None]
    return {"name": name, **layout(model, fmt, pages)}


def document(files: list[dict], fmt: str) -> str:
    """Every file's text as one document; with several files each gets a heading."""
    if len(files) == 1:
        return files[0]["text"] + "\n"
    parts = []
    for f in files:
        heading = f"# {f['name']}" if fmt == "markdown" else f"==> {f['name']} <=="
        parts.append(f"{heading}\n\n{f['text']}")
    return "\n\n".join(parts) + "\n"
