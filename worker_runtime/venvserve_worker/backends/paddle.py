"""PaddleOCR 3.x (PP-OCRv5 pipeline) as a venvserve backend.

``paddleocr.PaddleOCR`` runs text detection and recognition; its models are
downloaded by PaddleX on first use into ``$PADDLE_PDX_CACHE_HOME/official_models``
(the gateway points it into its data dir). The recognised lines are laid out
into text (and markdown paragraphs) like the rapidocr backend does.

``load()`` options, all optional:

- ``text_detection_model_name`` / ``text_recognition_model_name``: PaddleX
  model names (default ``PP-OCRv5_mobile_det`` / ``PP-OCRv5_mobile_rec`` on
  CPU, the ``_server_`` pair on GPU); ``text_detection_model_dir`` /
  ``text_recognition_model_dir``: local model folders instead.
- ``lang`` (e.g. "en", "ch", "japan"), when no model names are given.
- ``device``: "cpu" (default) or "gpu"/"gpu:0" (needs a CUDA build of
  paddlepaddle, which PyPI does not carry: see docs/gpu-models.md).
- ``use_textline_orientation``: the 180° text-line classifier (default false).
- ``text_score``: drop lines recognised with a lower confidence (default 0.5).
- ``cpu_threads``: threads for CPU inference (default PaddleOCR's choice).
- ``warmup``: run one synthetic line during load (default true).
"""

import os
import threading
import time
from typing import Any, Dict, List

from . import _options
from .base import LoadError
from ._layout import layout_text
from ._ocr_common import check_ocr_request, open_image, package_versions, warmup_image
from ._reading_order import fragment

PACKAGES = ("paddleocr", "paddlex", "paddlepaddle", "paddlepaddle-gpu", "numpy", "pillow")
MODEL_KEYS = ("text_detection_model_name", "text_recognition_model_name")


def model_names(options: Dict[str, Any]) -> Dict[str, str]:
    """The PaddleX models the pipeline will load (when no local dirs are given)."""
    size = "server" if str(options.get("device", "cpu")).startswith("gpu") else "mobile"
    names = {}
    if not options.get("lang") or any(options.get(k) for k in MODEL_KEYS):
        names = {"text_detection_model_name": "PP-OCRv5_%s_det" % size,
                 "text_recognition_model_name": "PP-OCRv5_%s_rec" % size}
    for key in MODEL_KEYS:
        if options.get(key):
            names[key] = str(options[key])
        dir_key = key.replace("_name", "_dir")
        if options.get(dir_key):
            names.pop(key, None)
    return names


class PaddleOCRBackend:
    def __init__(self) -> None:
        self._ocr: Any = None
        self._np: Any = None
        self._score = 0.5
        self._lock = threading.Lock()
        self._load_s = None

    @staticmethod
    def weights_needed(options: Dict[str, Any]) -> list:
        options = options or {}
        refs = [("paddlex", name, None) for name in model_names(options).values()]
        refs += [("local", str(options[k]), None) for k in
                 ("text_detection_model_dir", "text_recognition_model_dir") if options.get(k)]
        return refs

    @staticmethod
    def pull(options: Dict[str, Any]) -> Dict[str, Any]:
        """Creating the pipeline downloads its models into PaddleX's cache."""
        backend = PaddleOCRBackend()
        backend.load(dict(options or {}, warmup=False))
        home = os.environ.get("PADDLE_PDX_CACHE_HOME") or os.path.expanduser("~/.paddlex")
        return {"weights": sorted(model_names(options or {}).values()), "path": os.path.join(home, "official_models"),
                "downloaded": True}

    def load(self, options: Dict[str, Any]) -> None:
        t0 = time.perf_counter()
        options = dict(options or {})
        for key in MODEL_KEYS:
            _options.text(options, key)
        # PaddleX probes every model hoster at import unless told not to: slow, and
        # pointless offline. Downloads still happen when a model is missing.
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
        kwargs: Dict[str, Any] = {
            "use_doc_orientation_classify": False,
            "use_doc_unwarping": False,
            "use_textline_orientation": _options.flag(options, "use_textline_orientation", False),
            "device": _options.text(options, "device", "cpu"),
        }
        kwargs.update(model_names(options))
        for key in ("text_detection_model_dir", "text_recognition_model_dir", "lang"):
            if _options.text(options, key) is not None:
                kwargs[key] = options[key]
        if _options.positive_int(options, "cpu_threads") is not None:
            kwargs["cpu_threads"] = options["cpu_threads"]
        score = _options.number(options, "text_score", 0.5, 0.0, 1.0)
        warmup = _options.flag(options, "warmup", True)
        import numpy as np
        from paddleocr import PaddleOCR

        try:
            self._ocr = PaddleOCR(**kwargs)
        except Exception as exc:
            home = os.environ.get("PADDLE_PDX_CACHE_HOME") or "~/.paddlex"
            raise LoadError(
                "PaddleOCR could not load its models %s (%s: %s); if they are not in %s/official_models "
                "and the model hosters are unreachable, run `venvserve models pull MODEL` where they are "
                "reachable, or set text_detection_model_dir/text_recognition_model_dir to local folders"
                % (sorted(model_names(options).values()), type(exc).__name__, exc, home)) from exc
        self._np = np
        self._score = score
        if warmup:
            self._run(warmup_image())
        self._load_s = time.perf_counter() - t0

    def _run(self, image: Any) -> list:
        bgr = self._np.ascontiguousarray(self._np.asarray(image)[:, :, ::-1])  # PaddleX takes OpenCV's BGR
        with self._lock:
            results = list(self._ocr.predict(bgr))
        fragments = []
        for res in results:
            texts = res["rec_texts"]
            polys = res["rec_polys"]
            scores = res.get("rec_scores") if hasattr(res, "get") else None
            for i, (poly, text) in enumerate(zip(polys, texts)):
                if scores is not None and float(scores[i]) < self._score:
                    continue
                fragments.append(fragment(poly, str(text)))
        return fragments

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, _ = check_ocr_request(request)
        pages: List[Dict[str, Any]] = []
        for n, path in enumerate(images, 1):
            fragments = self._run(open_image(path, n))
            pages.append({"page": n, "text": layout_text(fragments, fmt == "markdown")})
        return {"pages": pages}

    def info(self) -> Dict[str, Any]:
        return package_versions(PACKAGES)
