"""What the two RapidOCR backends share: their catalog options, the page loop
and the answer's layout. Each subclass only builds its engine and turns one
image into fragments.

Options, checked at load (all optional): ``intra_op_num_threads`` /
``inter_op_num_threads`` (onnxruntime threads per session; default all
cores, set 1 when several replicas share a small machine), ``use_cls``
(default for the 180° angle classifier, false: it flips some upright lines),
``det_limit_side_len`` (2000) / ``det_limit_type`` ("max"): the detector's
resize (the engines' own 736/"min" blows a line image up ~4x for no accuracy
gain), ``text_score`` (drop fragments below this confidence), ``warmup``
(run one synthetic line during load, default true) and ``params``: raw
engine settings applied last.

Request ``options``: ``use_cls`` (bool) overrides the default per request.
"""

import os
import time
from typing import Any, Dict, List

from . import _options
from ._ocr_common import check_ocr_request, flag, open_image, package_versions, warmup_image
from ._layout import layout_text


class Settings:
    """The checked catalog options, in the engine-neutral names above."""

    def __init__(self, options: Dict[str, Any]) -> None:
        self.det_limit_type = _options.choice(options, "det_limit_type", "max", ("max", "min"))
        self.det_limit_side_len = _options.positive_int(options, "det_limit_side_len", 2000)
        self.threads = {key: _options.positive_int(options, key)
                        for key in ("intra_op_num_threads", "inter_op_num_threads")}
        self.text_score = _options.number(options, "text_score", None, 0.0, 1.0)
        self.use_cls = _options.flag(options, "use_cls", False)
        self.warmup = _options.flag(options, "warmup", True)
        self.params = _options.mapping(options, "params")


class RapidOCRBase:
    PACKAGES: tuple = ()

    def __init__(self) -> None:
        self._default_cls = False
        self._load_s = None

    def load(self, options: Dict[str, Any]) -> None:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        t0 = time.perf_counter()
        settings = Settings(dict(options or {}))
        self._default_cls = settings.use_cls
        self._build(settings)
        if settings.warmup:
            self._recognise(warmup_image(), self._default_cls)
        self._load_s = time.perf_counter() - t0

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, options = check_ocr_request(request)
        use_cls = flag(options, "use_cls", self._default_cls)
        pages: List[Dict[str, Any]] = []
        for n, path in enumerate(images, 1):
            fragments = self._recognise(open_image(path, n), use_cls)
            pages.append({"page": n, "text": layout_text(fragments, fmt == "markdown")})
        return {"pages": pages}

    def info(self) -> Dict[str, Any]:
        """Versions of the key distributions, e.g. {"rapidocr": "3.10.0", ...}."""
        return package_versions(self.PACKAGES)

    # -- what a subclass provides ---------------------------------------------------

    def _build(self, settings: Settings) -> None:
        raise NotImplementedError

    def _recognise(self, image: Any, use_cls: bool) -> list:
        """Fragments (quads with text, see _layout.Fragment) of one RGB image."""
        raise NotImplementedError
