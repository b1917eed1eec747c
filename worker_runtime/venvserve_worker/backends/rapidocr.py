"""RapidOCR 3.x (``pip install rapidocr onnxruntime``) as a venvserve backend.

Runs fully offline: the PP-OCR ONNX models ship inside the rapidocr wheel and
the default configuration resolves to those files (it would only download
when asked for another language/version through ``params``).

Options: see ``_rapidocr_base``; ``params`` are raw ``RapidOCR(params=...)``
entries, e.g. ``{"Det.box_thresh": 0.6}``.
"""

import threading
from typing import Any, Dict

from ._rapidocr_base import RapidOCRBase, Settings
from ._reading_order import fragment


class RapidOCRBackend(RapidOCRBase):
    PACKAGES = ("rapidocr", "onnxruntime", "opencv-python-headless", "numpy", "pillow")

    def __init__(self) -> None:
        super().__init__()
        self._engine: Any = None
        self._cls_engine: Any = None
        self._params: Dict[str, Any] = {}
        self._lock = threading.Lock()

    def _build(self, settings: Settings) -> None:
        from rapidocr import RapidOCR

        params: Dict[str, Any] = {
            "Global.log_level": "warning",
            "Det.limit_type": settings.det_limit_type,
            "Det.limit_side_len": settings.det_limit_side_len,
        }
        for key, n in settings.threads.items():
            if n is not None:
                params["EngineConfig.onnxruntime." + key] = n
        if settings.text_score is not None:
            params["Global.text_score"] = settings.text_score
        params.update(settings.params)
        # The classifier is chosen per request by engine, never by the shared flag.
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

    def _get_cls_engine(self) -> Any:
        """A second pipeline with the angle classifier on.

        rapidocr's ``__call__(use_cls=...)`` stores the flag on the shared
        engine, which would leak between concurrent requests; a separate
        engine (sharing the loaded det/rec sessions) avoids that.
        """
        with self._lock:
            if self._cls_engine is None:
                from rapidocr import RapidOCR

                engine = RapidOCR(params=dict(self._params, **{"Global.use_cls": True}))
                for attr in ("text_det", "text_rec"):
                    if getattr(self._engine, attr, None) is not None and hasattr(engine, attr):
                        setattr(engine, attr, getattr(self._engine, attr))
                loader = getattr(engine, "_load_cls_model", None)
                if callable(loader):
                    loader()
                self._cls_engine = engine
            return self._cls_engine

    def _recognise(self, image: Any, use_cls: bool) -> list:
        result = (self._get_cls_engine() if use_cls else self._engine)(image)
        boxes = getattr(result, "boxes", None)
        txts = getattr(result, "txts", None)
        if boxes is None or txts is None:
            return []
        return [fragment(box, str(txt)) for box, txt in zip(boxes, txts)]
