"""What one decoder may spend, the page-size arithmetic, and what a decoder's death means to a client.

Pure functions and data: used by the pool (gateway side) and by the decoder
process itself, and unit-tested without either.
"""

import math
import signal
from dataclasses import dataclass

from ..errors import PayloadTooLarge, VenvserveError

MIN_DPI = 36.0  # below this a page's text is unreadable to any engine: refuse instead


class DocumentTooComplex(VenvserveError):
    status, code = 422, "document_too_complex"


@dataclass(frozen=True)
class DecoderLimits:
    memory_mb: int = 1024  # RLIMIT_AS of the decoder process
    cpu_s: int = 60  # RLIMIT_CPU for one step: open a PDF, check an image, render a page
    timeout_s: float = 60.0  # wall clock for one step (open, check, render one page)
    max_page_pixels: int = 60_000_000  # an image or a rendered page larger than this is refused or scaled down

    @classmethod
    def from_settings(cls, settings) -> "DecoderLimits":
        return cls(memory_mb=settings.decoder_memory_mb, cpu_s=settings.decoder_cpu_s,
                   timeout_s=settings.decoder_timeout_s, max_page_pixels=settings.max_page_pixels)


def pool_size(configured: int, cores: int | None) -> int:
    """``decoders`` setting → process count: 0 means one per core, at most 4."""
    return configured if configured > 0 else max(1, min(4, cores or 1))


def pixels(width_pt: float, height_pt: float, dpi: float) -> int:
    """Pixels of a page rendered at ``dpi`` (pdfium rounds each side up at worst)."""
    scale = dpi / 72.0
    return math.ceil(width_pt * scale) * math.ceil(height_pt * scale)


def fit_dpi(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float | None:
    """The dpi to render a page at: ``dpi`` if it fits ``max_pixels``, else the largest that does
    (two decimals); None when even ``MIN_DPI`` would not fit (the page is refused)."""
    if not (width_pt > 0 and height_pt > 0) or math.isinf(width_pt) or math.isinf(height_pt):
        return None
    if pixels(width_pt, height_pt, dpi) <= max_pixels:
        return float(dpi)
    # In whole hundredths, so that what is checked is exactly what is returned.
    hundredths = min(math.floor(dpi * 100), math.floor(7200 * math.sqrt(max_pixels / (width_pt * height_pt))))
    while hundredths >= MIN_DPI * 100 and pixels(width_pt, height_pt, hundredths / 100) > max_pixels:
        hundredths -= 1
    return hundredths / 100 if hundredths >= MIN_DPI * 100 else None


def death_error(kind: str, returncode: int | None, timed_out: bool, limits: DecoderLimits) -> VenvserveError:
    """The client's error when the decoder working on its document died or was killed.

    ``kind`` is ``"pdf"`` or ``"image"``. Time and memory limits mean the document
    asks for more than this server spends on one (422); any other death means the
    decoder could not read it (400, as for a corrupt file).
    """
    what = "PDF" if kind == "pdf" else "image"
    if timed_out or returncode == -signal.SIGXCPU:
        spent = f"{limits.timeout_s:g} s" if timed_out else f"{limits.cpu_s} s of CPU"
        return DocumentTooComplex(f"decoding the {what} took longer than the {spent} this server allows",
                                  hint="simplify or split the document, or send its pages as images")
    if returncode in (-signal.SIGKILL, -signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS, 137, 134):
        # pdfium and zlib abort on a failed allocation under RLIMIT_AS as they would on corrupt data
        return DocumentTooComplex(f"the {what} could not be decoded within the decoder's "
                                  f"{limits.memory_mb} MB (or it is malformed)",
                                  hint="re-export the document, or send its pages as smaller images")
    code = "invalid_pdf" if kind == "pdf" else "invalid_image"
    return VenvserveError(f"the {what} could not be decoded (the decoder stopped, status {returncode})",
                          code=code, status=400, hint="re-export the document and upload it again")


def too_large(width: int, height: int, max_pixels: int, what: str = "image") -> PayloadTooLarge:
    return PayloadTooLarge(f"the {what} is {width}×{height} pixels; this server takes at most "
                           f"{max_pixels:,} pixels a page", code=f"{what}_too_large",
                           hint="downscale it, or raise --max-page-pixels")
