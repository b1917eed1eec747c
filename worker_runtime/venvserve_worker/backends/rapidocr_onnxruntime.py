"""rapidocr_onnxruntime 1.4.x (PP-OCRv4, models inside the wheel) as a backend.

The older single-package RapidOCR line; it needs ``opencv-python`` (not the
headless build) and Python < 3.13. Fully offline: the ONNX files ship in the
wheel and the engine never downloads.

Options: see ``_rapidocr_base``; ``params`` are raw keyword arguments of
``RapidOCR(**params)`` such as ``det_box_thresh``.
"""

from typing import Any, Dict

from ._rapidocr_base import RapidOCRBase, Settings
from ._reading_order import fragment


class RapidOCRv4Backend(RapidOCRBase):
    PACKAGES = ("rapidocr-onnxruntime", "onnxruntime", "opencv-python", "numpy", "pillow")

    def __init__(self) -> None:
        super().__init__()
        self._engine: Any = None

    def _build(self, settings: Settings) -> None:
        from rapidocr_onnxruntime import RapidOCR

        # Keyword names of rapidocr_onnxruntime 1.4: "det_*" go to the Det
        # section with the prefix removed, thread counts are Global and copied
        # into Det/Cls/Rec by the engine.
        kwargs: Dict[str, Any] = {
            "det_limit_type": settings.det_limit_type,
            "det_limit_side_len": settings.det_limit_side_len,
        }
        kwargs.update((key, n) for key, n in settings.threads.items() if n is not None)
        if settings.text_score is not None:
            kwargs["text_score"] = settings.text_score
        kwargs.update(settings.params)
        # The per-call use_cls argument is stateless in 1.4 (unlike rapidocr 3.x),
        # so one engine serves both; all three sessions load in the constructor.
        self._engine = RapidOCR(**kwargs)

    def _recognise(self, image: Any, use_cls: bool) -> list:
        # Never pass box_thresh/text_score etc. here: 1.4 stores them on the
        # shared engine, which would leak into other requests.
        result, _elapse = self._engine(image, use_cls=use_cls)
        # [[box (4 points), text, score], ...] or None when nothing was found.
        return [fragment(item[0], item[1]) for item in result or ()
                if len(item) >= 2 and isinstance(item[1], str)]
