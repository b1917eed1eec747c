"""RapidOCR 3.x (``pip install rapidocr onnxruntime``) as a venvserve backend.

Runs fully offline: the PP-OCR ONNX models ship inside the rapidocr wheel and
the default configuration resolves to those files (it would only download
when asked for another language/version through ``params``).

``load()`` options (catalog ``options``), all optional:

- ``intra_op_num_threads`` / ``inter_op_num_threads``: onnxruntime threads per
  session (default: onnxruntime's choice = all cores). Set 1 when several
  replicas share a small machine.
- ``use_cls``: default for the 180° angle classifier (default false: it flips
  some upright lines).
- ``det_limit_side_len`` (default 2000) / ``det_limit_type`` (default "max"):
  detector resize. rapidocr's own default (736, "min") blows an 800x80 line up
  to 2944x736 and is ~3x slower for no accuracy gain.
- ``text_score``: drop fragments recognised with a lower confidence (0.5).
- ``warmup``: run one synthetic line during load (default true) so the
  first request does not pay onnxruntime's first-run cost.
- ``params``: raw rapidocr ``RapidOCR(params=...)`` entries, e.g.
  ``{"Det.box_thresh": 0.6}``; applied last.

Request ``options``: ``use_cls`` (bool) overrides the default per request.
"""

import os
import threading
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

PACKAGES = ("rapidocr", "onnxruntime", "opencv-python-headless", "numpy", "pillow")


class RapidOCRBackend:
    def __init__(self) -> None:
        self._engine: Any = None
        self._cls_engine: Any = None
        self._params: Dict[str, Any] = {}
        self._default_cls = False
        self._lock = threading.Lock()
        self._load_s = None

    def load(self, options: Dict[str, Any]) -> None:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        t0 = time.perf_counter()
        from rapidocr import RapidOCR

        options = dict(options or {})
        params: Dict[str, Any] = {
            "Global.log_level": "warning",
            "Global.use_cls": False,
            "Det.limit_type": str(options.get("det_limit_type", "max")),
            "Det.limit_side_len": int(options.get("det_limit_side_len", 2000)),
        }
        for key in ("intra_op_num_threads", "inter_op_num_threads"):
            n = positive_int(options, key)
            if n is not None:
                params["EngineConfig.onnxruntime." + key] = n
        if options.get("text_score") is not None:
            params["Global.text_score"] = float(options["text_score"])
        params.update(options.get("params") or {})
        self._default_cls = bool(options.get("use_cls", params.get("Global.use_cls", False)))
        params["Global.use_cls"] = False
        self._params = params

        self._engine = RapidOCR(params=params)
        # rapidocr 3.x loads its sessions lazily on first use; load them now so
        # that "ready" means ready and the first request is not the slow one.
        for name in ("_load_det_model", "_load_rec_model"):
            loader = getattr(self._engine, name, None)
            if callable(loader):
                loader()
        if self._default_cls:
            self._get_cls_engine()
        if options.get("warmup", True):
            (self._get_cls_engine() if self._default_cls else self._engine)(warmup_image())
        self._load_s = time.perf_counter() - t0

    def _get_cls_engine(self) -> Any:
        """A second pipeline with the angle classifier on.

        rapidocr's ``__call__(use_cls=...)`` stores the flag on the shared
        engine, which would leak between concurrent requests; a separate
        engine (sharing the loaded det/rec sessions) avoids that.
        """
        with self._lock:
            if self._cls_engine is None:
                from rapidocr import RapidOCR

                params = dict(self._params)
                params["Global.use_cls"] = True
                engine = RapidOCR(params=params)
                for attr in ("text_det", "text_rec"):
                    if getattr(self._engine, attr, None) is not None and hasattr(engine, attr):
                        setattr(engine, attr, getattr(self._engine, attr))
                loader = getattr(engine, "_load_cls_model", None)
                if callable(loader):
                    loader()
                self._cls_engine = engine
            return self._cls_engine

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, options = check_ocr_request(request)
        use_cls = flag(options, "use_cls", self._default_cls)
        engine = self._get_cls_engine() if use_cls else self._engine
        pages: List[Dict[str, Any]] = []
        for n, path in enumerate(images, 1):
            img = open_image(path, n)
            result = engine(img)
            pages.append({"page": n, "text": layout_text(self._fragments(result), fmt == "markdown")})
        return {"pages": pages}

    @staticmethod
    def _fragments(result: Any) -> list:
        boxes = getattr(result, "boxes", None)
        txts = getattr(result, "txts", None)
        if boxes is None or txts is None:
            return []
        return [quad_to_box(box, str(txt)) for box, txt in zip(boxes, txts)]

    def info(self) -> Dict[str, Any]:
        """Versions of the key distributions, e.g. {"rapidocr": "3.10.0", ...}."""
        return package_versions(PACKAGES)
