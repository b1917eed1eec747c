"""Tesseract (via ``pytesseract``) as a venvserve backend.

The ``tesseract`` binary and its language data come from the OS (Debian:
``apt-get install tesseract-ocr``, more languages as ``tesseract-ocr-deu``
etc.); the env holds only pytesseract and Pillow.

``load()`` options, all optional: ``lang`` (default language, "eng"),
``psm`` (page segmentation mode, default tesseract's 3), ``tesseract_cmd``
(path of the binary when it is not on PATH), ``timeout_s`` (per page; 0 =
none), ``omp_thread_limit`` (default 1: OpenMP threading is ~6x slower on a
2-core machine, and replicas give parallelism instead).

Request ``options``: ``lang`` (e.g. "deu" or "eng+deu"; must be installed)
and ``psm`` (0-13).
"""

import os
import re
import time
from typing import Any, Dict, List, Optional, Tuple

from .base import BackendError
from ._ocr_common import check_ocr_request, open_image, package_versions

PACKAGES = ("pytesseract", "pillow")
_LANG_RE = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")


class TesseractBackend:
    def __init__(self) -> None:
        self._pt: Any = None
        self._lang = "eng"
        self._psm: Optional[int] = None
        self._timeout = 0
        self._langs: set = set()
        self._tesseract_version: Optional[str] = None
        self._load_s = None

    def load(self, options: Dict[str, Any]) -> None:
        t0 = time.perf_counter()
        options = dict(options or {})
        os.environ["OMP_THREAD_LIMIT"] = str(int(options.get("omp_thread_limit", 1)))
        import pytesseract

        if options.get("tesseract_cmd"):
            pytesseract.pytesseract.tesseract_cmd = str(options["tesseract_cmd"])
        try:
            self._tesseract_version = str(pytesseract.get_tesseract_version())
        except pytesseract.TesseractNotFoundError:
            raise RuntimeError(
                "the tesseract binary was not found (looked for %r); install it "
                "(Debian/Ubuntu: apt-get install tesseract-ocr) or set the model "
                "option 'tesseract_cmd'" % pytesseract.pytesseract.tesseract_cmd
            )
        self._langs = set(pytesseract.get_languages(config=""))
        self._pt = pytesseract
        self._lang = self._check_lang(str(options.get("lang", "eng")), at_load=True)
        self._psm = self._check_psm(options.get("psm"))
        self._timeout = float(options.get("timeout_s", 0) or 0)
        self._load_s = time.perf_counter() - t0

    def _check_lang(self, lang: str, at_load: bool = False) -> str:
        if not _LANG_RE.match(lang):
            raise BackendError("invalid_option", "lang must look like 'eng' or 'eng+deu' (got %r)" % (lang,), 400)
        missing = [x for x in lang.split("+") if x not in self._langs]
        if missing:
            msg = "tesseract language data not installed: %s (installed: %s); on Debian/Ubuntu: apt-get install %s" % (
                ", ".join(missing),
                ", ".join(sorted(self._langs)) or "none",
                " ".join("tesseract-ocr-" + x.lower().replace("_", "-") for x in missing),
            )
            if at_load:
                raise RuntimeError(msg)
            raise BackendError("unsupported_language", msg, 400)
        return lang

    @staticmethod
    def _check_psm(value: Any) -> Optional[int]:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 13:
            raise BackendError("invalid_option", "psm must be an integer 0-13 (got %r)" % (value,), 400)
        return value

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, options = check_ocr_request(request)
        lang = self._check_lang(str(options["lang"])) if options.get("lang") else self._lang
        psm = self._check_psm(options["psm"]) if options.get("psm") is not None else self._psm
        config = "--psm %d" % psm if psm is not None else ""
        pages: List[Dict[str, Any]] = []
        for n, path in enumerate(images, 1):
            img = open_image(path, n)
            try:
                text = self._layout(img, lang, config, markdown=fmt == "markdown")
            except RuntimeError as exc:  # pytesseract's timeout
                if "timeout" in str(exc).lower():
                    raise BackendError(
                        "timeout", "tesseract took longer than %gs on page %d" % (self._timeout, n), 504
                    )
                raise
            pages.append({"page": n, "text": text})
        return {"pages": pages}

    def _layout(self, img: Any, lang: str, config: str, markdown: bool) -> str:
        """Lines and paragraphs as tesseract's own layout analysis found them:
        words grouped by (block, paragraph, line); lines joined by "\\n" and, in
        markdown, paragraphs by a blank line (the same shape as the other
        OCR backends, where image_to_string would keep its own blank lines)."""
        data = self._pt.image_to_data(
            img, lang=lang, config=config, output_type=self._pt.Output.DICT, timeout=self._timeout
        )
        paragraphs: Dict[Tuple[int, int], Dict[int, List[Tuple[int, str]]]] = {}
        order: List[Tuple[int, int]] = []
        for i, word in enumerate(data["text"]):
            word = (word or "").strip()
            if not word or int(data["level"][i]) != 5:
                continue
            key = (int(data["page_num"][i]) * 100000 + int(data["block_num"][i]), int(data["par_num"][i]))
            if key not in paragraphs:
                paragraphs[key] = {}
                order.append(key)
            line = paragraphs[key].setdefault(int(data["line_num"][i]), [])
            line.append((int(data["word_num"][i]), word))
        out = []
        for key in order:
            lines = paragraphs[key]
            out.append("\n".join(" ".join(w for _, w in sorted(lines[ln])) for ln in sorted(lines)))
        return ("\n\n" if markdown else "\n").join(out)

    def info(self) -> Dict[str, Any]:
        """Versions of pytesseract, Pillow and the tesseract binary."""
        versions: Dict[str, Any] = package_versions(PACKAGES)
        versions["tesseract"] = self._tesseract_version
        return versions
