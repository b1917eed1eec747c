"""Helpers shared by the OCR backends (rapidocr, rapidocr_onnxruntime, tesseract).

Stdlib only at import time; ``open_image`` imports Pillow when called, so this
module is importable from any env, but only OCR envs (which all carry Pillow)
call it.
"""

from importlib import metadata
from statistics import median
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .base import BackendError

# (x0, y0, x1, y1, text): an axis-aligned box around one recognised fragment.
Fragment = Tuple[float, float, float, float, str]

# Two boxes are on the same line when their vertical centres are closer than
# this fraction of the (larger) box height.
SAME_LINE = 0.5
# A paragraph break is a blank gap (bottom of one line to top of the next)
# larger than this fraction of the typical line height. With the usual line
# pitch of ~1.2-1.5 heights the blank gap is ~0.2-0.5 of a height; one empty
# line in between makes it >= ~1.2.
PARAGRAPH_GAP = 0.75


def check_ocr_request(request: Dict[str, Any]) -> Tuple[List[str], str, Dict[str, Any]]:
    """Validate an OCR request; answer (images, format, options)."""
    task = request.get("task")
    if task != "ocr":
        raise BackendError(
            "unsupported_task",
            "this model only does task 'ocr' (got %r); send "
            '{"task": "ocr", "images": [...], "format": "text"|"markdown"}' % (task,),
            400,
        )
    images = request.get("images")
    if not isinstance(images, list) or not images or not all(isinstance(p, str) for p in images):
        raise BackendError("invalid_request", "'images' must be a non-empty list of image paths", 400)
    fmt = request.get("format") or "text"
    if fmt not in ("text", "markdown"):
        raise BackendError("invalid_format", "format must be 'text' or 'markdown' (got %r)" % (fmt,), 400)
    options = request.get("options") or {}
    if not isinstance(options, dict):
        raise BackendError("invalid_request", "'options' must be a JSON object", 400)
    return images, fmt, options


def open_image(path: str, page: int):
    """Decode one page fully with Pillow and answer an RGB ``PIL.Image``.

    Upright per EXIF, transparency flattened onto white. A file that cannot be
    decoded (not an image, corrupt, truncated) raises ``invalid_image``.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.load()  # Image.open is lazy: force the full decode here
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # a broken EXIF block is no reason to fail the page
                pass
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
            return im.convert("RGB")
    except FileNotFoundError:
        raise  # the gateway's spool file is gone: a server fault, not the client's
    except Image.DecompressionBombError as exc:
        raise BackendError(
            "image_too_large",
            "page %d is too large to decode (%s); downscale it below ~90 megapixels and retry" % (page, exc),
            413,
        )
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # UnidentifiedImageError is an OSError
        raise BackendError(
            "invalid_image",
            "page %d could not be decoded as an image (%s); send a complete PNG, JPEG, WebP, "
            "TIFF or BMP file (re-export it if it is truncated or corrupt)" % (page, exc),
            400,
        )


def warmup_image():
    """A small synthetic text line: running it once through an engine makes
    onnxruntime allocate and optimise now, not on the first real request."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("RGB", (480, 96), "white")
    draw = ImageDraw.Draw(im)
    try:
        font = ImageFont.load_default(size=40)  # Pillow >= 10.1
    except TypeError:
        font = ImageFont.load_default()
    draw.text((16, 24), "Warm up 0123", fill="black", font=font)
    return im


def quad_to_box(points: Iterable[Sequence[float]], text: str) -> Fragment:
    """A detector quadrilateral [[x, y] * 4] → an axis-aligned fragment."""
    pts = [(float(p[0]), float(p[1])) for p in points]
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return (min(xs), min(ys), max(xs), max(ys), text)


def group_lines(fragments: Sequence[Fragment]) -> List[List[Fragment]]:
    """Group fragments into lines (top to bottom), each sorted left to right."""
    frags = [f for f in fragments if f[4] and f[4].strip()]
    frags.sort(key=lambda f: ((f[1] + f[3]) / 2.0, f[0]))
    lines: List[Dict[str, Any]] = []
    for f in frags:
        cy = (f[1] + f[3]) / 2.0
        h = max(f[3] - f[1], 1.0)
        best: Optional[Dict[str, Any]] = None
        best_d = None
        # Only recent lines can match (fragments come sorted by centre).
        for line in lines[-3:]:
            d = abs(cy - line["cy"])
            if d <= SAME_LINE * max(h, line["h"]) and (best_d is None or d < best_d):
                best, best_d = line, d
        if best is None:
            lines.append({"cy": cy, "h": h, "items": [f]})
        else:
            best["items"].append(f)
            n = len(best["items"])
            best["cy"] += (cy - best["cy"]) / n
            best["h"] = max(best["h"], h)
    out = []
    for line in lines:
        out.append(sorted(line["items"], key=lambda f: f[0]))
    out.sort(key=lambda items: min(f[1] for f in items) + max(f[3] for f in items))
    return out


def layout_text(fragments: Sequence[Fragment], markdown: bool = False) -> str:
    """Page text in reading order: lines joined by "\\n"; in markdown,
    paragraphs (a vertical gap well above the line height) by a blank line."""
    lines = group_lines(fragments)
    if not lines:
        return ""
    texts = [" ".join(f[4].strip() for f in items) for items in lines]
    if not markdown:
        return "\n".join(texts)
    tops = [min(f[1] for f in items) for items in lines]
    bottoms = [max(f[3] for f in items) for items in lines]
    line_h = median(b - t for t, b in zip(tops, bottoms)) or 1.0
    parts = [texts[0]]
    for i in range(1, len(lines)):
        gap = tops[i] - bottoms[i - 1]
        parts.append("\n\n" if gap > PARAGRAPH_GAP * line_h else "\n")
        parts.append(texts[i])
    return "".join(parts)


def package_versions(names: Iterable[str]) -> Dict[str, Optional[str]]:
    """Installed versions of distributions (None when absent)."""
    out: Dict[str, Optional[str]] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def positive_int(options: Dict[str, Any], key: str) -> Optional[int]:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("option %r must be a positive integer (got %r)" % (key, value))
    return value


def flag(options: Dict[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise BackendError("invalid_option", "option %r must be true or false (got %r)" % (key, value), 400)
    return value
