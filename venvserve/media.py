"""What an upload is (by its bytes, not its name), and PDF pages as images."""

from pathlib import Path

from .errors import BadRequest, VenvserveError

SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
    (b"%PDF-", "application/pdf"),
]
SUPPORTED = "PNG, JPEG, WebP, TIFF, BMP or PDF"


class UnsupportedMedia(VenvserveError):
    status, code = 415, "unsupported_media_type"


def sniff(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in SIGNATURES:
        if head.startswith(magic):
            return kind
    # A PDF may start with a few bytes of junk before its header.
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    return None


def classify(path: Path, size: int) -> str:
    if size == 0:
        raise BadRequest("the uploaded file is empty", code="empty_file",
                         hint="send the image or PDF as the multipart field `file`")
    with open(path, "rb") as f:
        head = f.read(1024)
    kind = sniff(head)
    if kind is None:
        known = "GIF" if head.startswith(b"GIF8") else None
        what = f"a {known} image" if known else "neither an image nor a PDF"
        raise UnsupportedMedia(f"the uploaded file is {what}; send {SUPPORTED}",
                               hint="convert the file to PNG or PDF first")
    return kind


def check_image(path: Path) -> tuple[int, int]:
    """Header and integrity check without decoding the pixels; the size in pixels.

    Truncation is caught here for PNG (verify() walks every chunk's CRC); the
    backends catch what only a full decode reveals.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            size = im.size
            if im.format == "PNG":
                im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadRequest(f"the image cannot be decoded ({exc}); it may be truncated or corrupt",
                         code="invalid_image", hint="re-export the image and upload it again") from None
    return size


def open_pdf(path: Path, max_pages: int):
    """The document and its page count; a 400 for what cannot be OCR'd. Close it after use."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise BadRequest(f"the PDF cannot be opened ({exc}); it may be truncated, corrupt or encrypted",
                         code="invalid_pdf", hint="re-export the PDF, or send its pages as images") from None
    count = len(pdf)
    if count == 0 or count > max_pages:
        pdf.close()
        if count == 0:
            raise BadRequest("the PDF has no pages", code="invalid_pdf")
        raise BadRequest(f"the PDF has {count} pages; this server takes at most {max_pages}",
                         code="too_many_pages", hint="split the PDF, or raise --max-pdf-pages")
    return pdf, count


def render_page(pdf, index: int, out_dir: Path, dpi: int) -> Path:
    """Rasterise one page to a PNG in ``out_dir`` (fast compression: it is read once)."""
    import pypdfium2 as pdfium

    page = pdf[index]
    try:
        image = page.render(scale=dpi / 72).to_pil()
    except pdfium.PdfiumError as exc:
        raise BadRequest(f"page {index + 1} of the PDF cannot be rendered: {exc}", code="invalid_pdf") from None
    finally:
        page.close()
    target = out_dir / f"page-{index + 1:04d}.png"
    image.save(target, format="PNG", compress_level=1)
    return target


def render_pdf(path: Path, out_dir: Path, dpi: int, max_pages: int) -> list[Path]:
    """Every page as a PNG file in ``out_dir``."""
    pdf, count = open_pdf(path, max_pages)
    try:
        return [render_page(pdf, index, out_dir, dpi) for index in range(count)]
    finally:
        pdf.close()
