"""rapidocr_onnxruntime 1.4.x (PP-OCRv4, models inside the wheel) as a backend.

The older single-package RapidOCR line; it needs ``opencv-python`` (not the
headless build) and Python < 3.13. Fully offline: the ONNX files ship in the
wheel and the engine never downloads.

``load()`` options, all optional: ``intra_op_num_threads`` /
``inter_op_num_threads`` (onnxruntime threads per session; set 1 when several
replicas share a small machine), ``use_cls`` (default for the 180° angle
classifier, default false: it flips some upright lines),
``det_limit_side_len`` (2000) / ``det_limit_type`` ("max"): detector resize
(the engine's 736/"min" default blows a line image up ~4x for no accuracy
gain), ``text_score`` (0.5), ``warmup`` (true) and ``params``: raw keyword
arguments of ``RapidOCR(**params)`` such as ``det_box_thresh``, applied last.

Request ``options``: ``use_cls`` (bool) overrides the default per request.
"""

import os
import time
from typing import Any, Dict, List

from ._ocr_common import (
    check_ocr_request,
    flag,
    layout_text,
    open_image,
    package_versions,
    positive_int,
    quad_to_box,
    warmup_image,
)

PACKAGES = ("rapidocr-onnxruntime", "onnxruntime", "opencv-python", "numpy", "pillow")


class RapidOCRv4Backend:
    def __init__(self) -> None:
        self._engine: Any = None
        self._default_cls = False
        self._load_s = None

    def load(self, options: Dict[str, Any]) -> None:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        t0 = time.perf_counter()
        from rapidocr_onnxruntime import RapidOCR

        options = dict(options or {})
        # Keyword names of rapidocr_onnxruntime 1.4: "det_*" go to the Det
        # section with the prefix removed, thread counts are Global and copied
        # into Det/Cls/Rec by the engine.
        kwargs: Dict[str, Any] = {
            "det_limit_type": str(options.get("det_limit_type", "max")),
            "det_limit_side_len": int(options.get("det_limit_side_len", 2000)),
        }
        for key in ("intra_op_num_threads", "inter_op_num_threads"):
            n = positive_int(options, key)
            if n is not None:
                kwargs[key] = n
        if options.get("text_score") is not None:
            kwargs["text_score"] = float(options["text_score"])
        kwargs.update(options.get("params") or {})
        self._default_cls = bool(options.get("use_cls", False))
        # The per-call use_cls argument is stateless in 1.4 (unlike rapidocr 3.x),
        # so one engine serves both; all three sessions load in the constructor.
        self._engine = RapidOCR(**kwargs)
        if options.get("warmup", True):
            self._engine(warmup_image(), use_cls=self._default_cls)
        self._load_s = time.perf_counter() - t0

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, options = check_ocr_request(request)
        use_cls = flag(options, "use_cls", self._default_cls)
        pages: List[Dict[str, Any]] = []
        for n, path in enumerate(images, 1):
            img = open_image(path, n)
            # Never pass box_thresh/text_score etc. here: 1.4 stores them on the
            # shared engine, which would leak into other requests.
            result, _elapse = self._engine(img, use_cls=use_cls)
            pages.append({"page": n, "text": layout_text(self._fragments(result), fmt == "markdown")})
        return {"pages": pages}

    @staticmethod
    def _fragments(result: Any) -> list:
        # [[box (4 points), text, score], ...] or None when nothing was found.
        if not result:
            return []
        out = []
        for item in result:
            if len(item) >= 2 and isinstance(item[1], str):
                out.append(quad_to_box(item[0], item[1]))
        return out

    def info(self) -> Dict[str, Any]:
        """Versions of the key distributions, e.g. {"rapidocr-onnxruntime": "1.4.4", ...}."""
        return package_versions(PACKAGES)
