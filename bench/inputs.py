"""What the bench sends: JSON bodies, rendered text pages, big PNGs, PDFs, multipart OCR requests."""

import io
import json
import random

from . import load

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
ECHO_BODY = json.dumps({"text": "hello world, a one hundred byte JSON request body for the venvserve bench"},
                       separators=(",", ":")).encode()
OCR_LINES = ["Invoice 2024-0815 from venvserve", "Each model runs in its own environment",
             "Total due: 1,234.56 EUR", "The quick brown fox jumps over the lazy dog",
             "Workers speak HTTP over a Unix socket", "Pages are fanned out across replicas"]


def json_body(size: int) -> bytes:
    """A JSON object of about ``size`` bytes: one long string of text (what a base64 payload looks like)."""
    filler = (b"abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:max(0, size - 12)].decode()
    return json.dumps({"text": filler}, separators=(",", ":")).encode()


def font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        return ImageFont.load_default(size=size)


def text_page(lines: list[str], size: int = 30, width: int = 900):
    from PIL import Image, ImageDraw

    f = font(size)
    height = int(len(lines) * size * 1.7 + 2 * size)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size + i * size * 1.7), line, fill="black", font=f)
    return image


def png_bytes(image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kw)
    return buf.getvalue()


def small_png() -> bytes:
    from PIL import Image

    return png_bytes(Image.new("RGB", (16, 16), (250, 250, 250)))


def big_png(mib: float = 10.0) -> bytes:
    """Noise, stored without compression: a PNG of about ``mib`` MiB."""
    from PIL import Image

    width = 2048
    height = int(mib * 2**20 / (width * 3 + 1))
    rng = random.Random(7)
    raw = rng.randbytes(width * height * 3)
    return png_bytes(Image.frombytes("RGB", (width, height), raw), compress_level=0)


def ocr_pages(n: int, lines_per_page: int = 6) -> list:
    pages = []
    for i in range(n):
        lines = [f"Page {i + 1}: " + OCR_LINES[i % len(OCR_LINES)]]
        lines += [OCR_LINES[(i + j) % len(OCR_LINES)] for j in range(1, lines_per_page)]
        pages.append(text_page(lines))
    return pages


def pdf_bytes(images, dpi: int) -> bytes:
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return buf.getvalue()


def ocr_request(data: bytes, filename: str, model: str) -> bytes:
    body, ctype = load.multipart({"model": model}, "file", filename, data)
    return load.http_request("POST", "/v1/ocr", body, content_type=ctype)
