"""Tesseract as a venvserve backend: the ``tesseract`` CLI on the page's own file.

The binary and its language data come from the OS (Debian: ``apt-get install
tesseract-ocr``, more languages as ``tesseract-ocr-deu`` etc.). Tesseract
reads the file the gateway spooled, as it is: re-encoding it (as pytesseract
does, through a temporary PNG without the file's resolution) costs seconds a
page and makes tesseract guess the resolution, and a wrong guess misreads
digits and small words. It is told the resolution with ``--dpi``: the one
stored in the file, else the ``dpi`` the request carries (the render
resolution of a PDF page), else the ``dpi`` option. Only a file tesseract
cannot take as it is (EXIF-rotated, transparent, multi-frame, an unusual
format) is first made upright and opaque, as a PNG carrying that resolution.
Its lines come back in reading order (``_tesseract_tsv``): its own block order
puts the pieces of a running head and of a table row apart.

``load()`` options, all optional: ``lang`` (default language, "eng"),
``psm`` (page segmentation mode 0-13, default tesseract's 3),
``tesseract_cmd`` (path of the binary when it is not on PATH), ``timeout_s``
(per page; 0 = none), ``omp_thread_limit`` (default 1: OpenMP threading is
~6x slower on a 2-core machine, and replicas give parallelism instead),
``dpi`` (resolution of files that store none, default 300), ``thresholding``
("auto", "otsu", "adaptive-otsu" or "sauvola"; auto: Sauvola where the
page's light is uneven, as in a photo, else Otsu).

Request ``options``: ``lang`` (e.g. "deu" or "eng+deu"; must be installed),
``psm`` (0-13) and ``thresholding``. Request key ``dpi``: the render resolution of the pages.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional

from . import _options
from ._layout import TextLine, render
from ._tesseract_tsv import in_reading_order, parse, replace, shift, table_regions
from ._ocr_common import check_ocr_request, decoding, package_versions, upright_rgb
from .base import BackendError, LoadError, OptionError

PACKAGES = ("pytesseract", "pillow")
_LANG_RE = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
# Tesseract ignores a resolution outside this range and guesses instead.
MIN_DPI, MAX_DPI = 70, 2400
# No difference between 70 and 400 dpi on clean rendered lines; 300 is what
# scans and tesseract's own training assume.
DEFAULT_DPI = 300
# Formats leptonica reads as Pillow does; anything else is re-encoded first.
NATIVE_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "PPM")
# Tesseract 5's binarisations: one global Otsu threshold (its default), or local thresholds.
# "auto": Otsu where the page's light is even (rendered pages, flatbed scans: it reads best
# there), Sauvola where it is not: a photo's dim corners defeat one global threshold (the
# corpus's photographed page: CER 0.44 with Otsu, 0.07 with Sauvola; docs/ocr-quality.md).
THRESHOLDS = {"otsu": 0, "adaptive-otsu": 1, "sauvola": 2}
UNEVEN_LIGHT = 40  # grey levels between the brightest and the dimmest background of a 4x4 grid


class TesseractBackend:
    def __init__(self) -> None:
        self._cmd = "tesseract"
        self._lang = "eng"
        self._psm: Optional[int] = None
        self._threshold = "auto"
        self._timeout: Optional[float] = None
        self._dpi = DEFAULT_DPI
        self._env: Dict[str, str] = {}
        self._langs: set = set()
        self._tesseract_version: Optional[str] = None
        self._load_s = None

    def load(self, options: Dict[str, Any]) -> None:
        t0 = time.perf_counter()
        options = dict(options or {})
        lang = _options.text(options, "lang", "eng")
        if not _LANG_RE.match(lang):
            raise OptionError("option 'lang' must look like 'eng' or 'eng+deu' (got %r)" % (lang,))
        self._psm = _options.choice(options, "psm", None, (None,) + tuple(range(14)))
        self._threshold = _options.choice(options, "thresholding", "auto", ("auto",) + tuple(THRESHOLDS))
        self._timeout = _options.number(options, "timeout_s", 0.0) or None
        self._dpi = int(_options.number(options, "dpi", DEFAULT_DPI, MIN_DPI, MAX_DPI))
        threads = _options.positive_int(options, "omp_thread_limit", 1)
        os.environ["OMP_THREAD_LIMIT"] = str(threads)
        self._env = dict(os.environ)
        cmd = _options.text(options, "tesseract_cmd", "tesseract")
        self._cmd = shutil.which(cmd) or cmd
        try:
            version = self._call(["--version"], 30).stdout
            langs = self._call(["--list-langs"], 30).stdout
        except OSError:
            raise LoadError("the tesseract binary was not found (looked for %r); install it (Debian/Ubuntu: "
                            "apt-get install tesseract-ocr) or set the model option 'tesseract_cmd'" % cmd)
        self._tesseract_version = (version.split() or ["?", "?"])[1] if version.startswith("tesseract") else None
        self._langs = {x.strip() for x in langs.splitlines()[1:] if x.strip()}
        missing = self._missing(lang)
        if missing:
            raise OptionError("option 'lang': " + missing)
        self._lang = lang
        self._load_s = time.perf_counter() - t0

    def _missing(self, lang: str) -> Optional[str]:
        missing = [x for x in lang.split("+") if x not in self._langs]
        if not missing:
            return None
        return "tesseract language data not installed: %s (installed: %s); on Debian/Ubuntu: apt-get install %s" % (
            ", ".join(missing), ", ".join(sorted(self._langs)) or "none",
            " ".join("tesseract-ocr-" + x.lower().replace("_", "-") for x in missing))

    def _call(self, args: List[str], timeout: Optional[float]) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([self._cmd] + args, capture_output=True, text=True, timeout=timeout,
                              env=self._env or None, stdin=subprocess.DEVNULL)

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, options = check_ocr_request(request)
        lang, psm, dpi, threshold = self._request_settings(request, options)
        pages: List[Dict[str, Any]] = []
        work = tempfile.mkdtemp(prefix="venvserve-tesseract-")
        try:
            for n, path in enumerate(images, 1):
                source, page_dpi, uneven = self._source(path, n, dpi, work, threshold == "auto")
                if threshold == "auto":
                    method = THRESHOLDS["sauvola" if uneven else "otsu"]
                else:
                    method = THRESHOLDS[threshold]
                lines = self._recognise(source, n, lang, psm, page_dpi, work, method)
                pages.append({"page": n, "text": render(lines, fmt == "markdown")})
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return {"pages": pages}

    def _request_settings(self, request: Dict[str, Any], options: Dict[str, Any]):
        lang = options.get("lang") or self._lang
        if not isinstance(lang, str) or not _LANG_RE.match(lang):
            raise BackendError("invalid_option", "lang must look like 'eng' or 'eng+deu' (got %r)" % (lang,), 400)
        missing = self._missing(lang)
        if missing:
            raise BackendError("unsupported_language", missing, 400)
        psm = options.get("psm", self._psm)
        if psm is not None and (isinstance(psm, bool) or not isinstance(psm, int) or not 0 <= psm <= 13):
            raise BackendError("invalid_option", "psm must be an integer 0-13 (got %r)" % (psm,), 400)
        dpi = request.get("dpi")
        if dpi is not None and (isinstance(dpi, bool) or not isinstance(dpi, (int, float))
                                or not MIN_DPI <= dpi <= MAX_DPI):
            raise BackendError("invalid_request", "dpi must be a number from %d to %d (got %r)"
                               % (MIN_DPI, MAX_DPI, dpi), 400)
        threshold = options.get("thresholding", self._threshold)
        if not isinstance(threshold, str) or (threshold != "auto" and threshold not in THRESHOLDS):
            raise BackendError("invalid_option", "thresholding must be one of auto, %s (got %r)"
                               % (", ".join(THRESHOLDS), threshold), 400)
        return lang, psm, int(round(dpi)) if dpi is not None else None, threshold

    def _source(self, path: str, page: int, request_dpi: Optional[int], work: str, measure_light: bool):
        """(file for tesseract, its resolution, whether its light is uneven): the spooled file
        itself when tesseract can take it as it is, else an upright, opaque PNG of it. Pillow
        decodes it fully either way, so a corrupt or truncated file is the client's 400, never a
        half-read page."""
        from PIL import Image

        with decoding(page):
            with Image.open(path) as im:
                im.load()
                stored = _stored_dpi(im.info.get("dpi"))
                dpi = stored or request_dpi or self._dpi
                uneven = measure_light and _uneven_light(im)
                if _native(im):
                    return path, dpi, uneven
                copy = os.path.join(work, "page-%d.png" % page)
                upright_rgb(im).save(copy, format="PNG", compress_level=1, dpi=(dpi, dpi))
                return copy, dpi, uneven

    def _recognise(self, source: str, page: int, lang: str, psm: Optional[int], dpi: int,
                   work: str, method: int) -> List[TextLine]:
        lines = parse(self._tsv(source, page, lang, psm, dpi, method))
        regions = table_regions(lines) if psm is None else []
        if regions:  # tables the page segmentation broke apart: read again as uniform blocks, by rows
            rereads = [shift(parse(self._tsv(crop, page, lang, 6, dpi, method)), dx, dy)
                       for crop, (dx, dy) in _crops(source, regions, dpi, work)]
            lines = replace(lines, regions, rereads)
        return in_reading_order(lines)

    def _tsv(self, source: str, page: int, lang: str, psm: Optional[int], dpi: int, method: int) -> str:
        args = [source, "stdout", "-l", lang, "--dpi", str(dpi), "-c", "thresholding_method=%d" % method]
        if psm is not None:
            args += ["--psm", str(psm)]
        try:
            done = self._call(args + ["tsv"], self._timeout)
        except subprocess.TimeoutExpired:
            raise BackendError("timeout", "tesseract took longer than %gs on page %d" % (self._timeout, page), 504)
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise RuntimeError("tesseract failed on page %d (exit %d): %s" % (page, done.returncode, tail))
        return done.stdout

    def info(self) -> Dict[str, Any]:
        """Versions of pytesseract, Pillow and the tesseract binary."""
        versions: Dict[str, Any] = package_versions(PACKAGES)
        versions["tesseract"] = self._tesseract_version
        return versions


def _crops(source: str, regions: List[tuple], dpi: int, work: str) -> List[tuple]:
    """(PNG file, its origin on the page) for each region: the region on a white margin, as
    tesseract misreads text that touches the image's edge (a cut row of a table)."""
    from PIL import Image

    margin = max(dpi // 10, 8)
    out = []
    with Image.open(source) as im:
        grey = upright_rgb(im).convert("L")
        for n, region in enumerate(regions):
            left, top = max(region[0], 0), max(region[1], 0)
            crop = grey.crop((left, top, min(region[2], grey.width), min(region[3], grey.height)))
            canvas = Image.new("L", (crop.width + 2 * margin, crop.height + 2 * margin), 255)
            canvas.paste(crop, (margin, margin))
            path = os.path.join(work, "region-%d.png" % n)
            canvas.save(path, format="PNG", compress_level=1, dpi=(dpi, dpi))
            out.append((path, (left - margin, top - margin)))
    return out


def _uneven_light(im: Any) -> bool:
    """Does the page's background brightness vary (a photo's vignette, a shadow)? The background
    of each cell of a 4x4 grid is its 90th-percentile grey, on a thumbnail."""
    grey = im.convert("L")
    grey.thumbnail((256, 256))
    width, height = grey.size
    backgrounds = []
    for i in range(4):
        for j in range(4):
            cell = grey.crop((i * width // 4, j * height // 4, (i + 1) * width // 4, (j + 1) * height // 4))
            histogram, seen = cell.histogram(), 0
            total = sum(histogram)
            for level in range(255, -1, -1):
                seen += histogram[level]
                if seen >= 0.1 * total:
                    backgrounds.append(level)
                    break
    return bool(backgrounds) and max(backgrounds) - min(backgrounds) > UNEVEN_LIGHT


def _stored_dpi(dpi: Any) -> Optional[int]:
    try:
        value = int(round(float(dpi[0])))
    except (TypeError, ValueError, IndexError):
        return None
    return value if MIN_DPI <= value <= MAX_DPI else None


def _native(im: Any) -> bool:
    """Can tesseract read this file as it is and see the page Pillow sees?"""
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    transparent = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    return (im.format in NATIVE_FORMATS and getattr(im, "n_frames", 1) == 1 and orientation in (None, 1)
            and not transparent and im.mode in ("1", "L", "P", "RGB"))

