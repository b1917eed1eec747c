"""A job's answer: per file the shape ``POST /v1/ocr`` answers, or all files as one document."""


def per_file(name: str, model: str, fmt: str, results: list[dict | None]) -> dict:
    """Pages in order; a page that failed for good carries its error, a pending one is left out."""
    pages = []
    for number, result in enumerate(results, start=1):
        if result is None:
            continue
        pages.append({"page": number, **result})
    texts = [p["text"] for p in pages if "text" in p]
    joiner = "\n\n" if fmt == "markdown" or len(results) > 1 else ""
    return {"name": name, "model": model, "format": fmt, "text": joiner.join(texts), "pages": pages}


def document(files: list[dict], fmt: str) -> str:
    """Every file's text as one document; with several files each gets a heading."""
    if len(files) == 1:
        return files[0]["text"] + "\n"
    parts = []
    for f in files:
        heading = f"# {f['name']}" if fmt == "markdown" else f"==> {f['name']} <=="
        parts.append(f"{heading}\n\n{f['text']}")
    return "\n\n".join(parts) + "\n"
