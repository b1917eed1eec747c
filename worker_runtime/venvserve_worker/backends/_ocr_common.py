"""Helpers shared by the OCR backends: the request, decoding a page, versions.

Stdlib only at import time; ``open_image`` imports Pillow when called, so this
module is importable from any env, but only OCR envs (which all carry Pillow)
call it.
"""

from contextlib import contextmanager
from importlib import metadata
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from . import _options
from ._layout import layout_text  # noqa: F401
from ._reading_order import fragment
from .base import BackendError

# Reading order and layout live in _reading_order and _layout; these names stay
# importable from here for the box-engine backends.
quad_to_box = fragment
positive_int = _options.positive_int


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
    from PIL import Image

    with decoding(page):
        with Image.open(path) as im:
            im.load()  # Image.open is lazy: force the full decode here
            return upright_rgb(im)


def upright_rgb(im: Any) -> Any:
    """A loaded image upright per EXIF, transparency flattened onto white, in RGB."""
    from PIL import Image, ImageOps

    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block is no reason to fail the page
        pass
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


@contextmanager
def decoding(page: int) -> Iterator[None]:
    """Pillow's decoding failures as the client's errors (``image_too_large``, ``invalid_image``)."""
    from PIL import Image

    try:
        yield
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


def package_versions(names: Iterable[str]) -> Dict[str, Optional[str]]:
    """Installed versions of distributions (None when absent)."""
    out: Dict[str, Optional[str]] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def flag(options: Dict[str, Any], key: str, default: bool) -> bool:
    """A request option that must be true or false (a 400 when it is not)."""
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise BackendError("invalid_option", "option %r must be true or false (got %r)" % (key, value), 400)
    return value
