"""Helpers shared by the backends of hub-hosted models (deepseek, mineru, hunyuan).

Stdlib only at import time: ``huggingface_hub`` and ``torch`` are imported
inside the functions, so this module (and the backends) import in any env,
and the gateway can read the backends' ``weights_needed()`` without them.

Weights are named by the model option ``weights``: a hub repo id
(``org/name``, downloaded into ``$HF_HOME``, which the gateway points into its
data dir) or the path of a local folder. ``revision`` pins a hub revision.
"""

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from . import _options
from .base import LoadError, OptionError

TRUE = ("1", "true", "yes", "on")

# Files a model folder needs; hub repos also carry sample images and PDFs.
MODEL_FILES = ("*.json", "*.safetensors", "*.py", "*.txt", "*.model", "*.tiktoken", "*.jinja")


def hub_offline() -> bool:
    """True when the user has told the HF libraries not to use the network."""
    return any(os.environ.get(v, "").strip().lower() in TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def weights_ref(options: Dict[str, Any], default: str) -> Tuple[str, str, Optional[str]]:
    """("local", path, None) or ("huggingface", repo_id, revision) for the model's weights."""
    name = str(options.get("weights") or default)
    revision = options.get("revision")
    if name.startswith(("/", "./", "../", "~")) or os.path.isdir(os.path.expanduser(name)):
        return ("local", os.path.expanduser(name), None)
    return ("huggingface", name, str(revision) if revision else None)


class WeightsMissing(LoadError, RuntimeError):
    """The weights are neither in a local folder nor in the hub cache, and cannot be fetched."""


def resolve_weights(options: Dict[str, Any], default: str, model_id: Optional[str] = None) -> str:
    """A local folder holding the weights: the ``weights`` folder itself, or the
    hub snapshot from the cache, downloaded first when the hub is reachable.

    Raises ``WeightsMissing`` with what to do when neither works.
    """
    kind, name, revision = weights_ref(options, default)
    label = model_id or name
    if kind == "local":
        if not os.path.isfile(os.path.join(name, "config.json")):
            raise WeightsMissing(
                "the weights folder %s has no config.json; point the model option 'weights' at a "
                "folder holding the model (config.json, *.safetensors, tokenizer files)" % name)
        return name
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, revision=revision, allow_patterns=list(MODEL_FILES), local_files_only=True)
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        pass
    cache = os.environ.get("HF_HOME") or "~/.cache/huggingface"
    if hub_offline():
        raise WeightsMissing(
            "the weights of %s are not in the hub cache (%s) and the hub is offline (HF_HUB_OFFLINE); "
            "run `venvserve models pull %s` where huggingface.co is reachable, or set the model "
            "option 'weights' to a local folder" % (name, cache, label))
    try:
        return snapshot_download(name, revision=revision, allow_patterns=list(MODEL_FILES))
    except Exception as exc:
        raise WeightsMissing(
            "the weights of %s are not in the hub cache (%s) and downloading them failed (%s: %s); "
            "run `venvserve models pull %s` where huggingface.co is reachable, or set the model "
            "option 'weights' to a local folder" % (name, cache, type(exc).__name__, exc, label)) from exc


def pull_weights(options: Dict[str, Any], default: str) -> Dict[str, Any]:
    """Download the weights into the hub cache (``venvserve models pull``)."""
    kind, name, revision = weights_ref(options, default)
    if kind == "local":
        return {"weights": name, "path": name, "downloaded": False}
    from huggingface_hub import snapshot_download

    path = snapshot_download(name, revision=revision, allow_patterns=list(MODEL_FILES))
    return {"weights": name, "revision": revision, "path": path, "downloaded": True}


def cpu_threads(options: Dict[str, Any]) -> Optional[int]:
    """The ``threads`` option (torch's CPU threads), set in the environment
    before torch is imported, so that OpenMP sizes its pool from it.

    On a CPU shared with other workers, torch's default (one thread per core)
    oversubscribes it: the tiny test models run ten times slower on 2 busy cores.
    """
    threads = _options.positive_int(options, "threads")
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


def apply_threads(torch: Any, threads: Optional[int]) -> None:
    if threads:
        torch.set_num_threads(threads)


def torch_device(torch: Any, options: Dict[str, Any]) -> str:
    """``device`` option, else cuda when torch sees a GPU, else cpu."""
    device = options.get("device")
    if device:
        device = str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise LoadError("option device=%r but torch sees no CUDA GPU (torch %s, CUDA build %s); "
                               "check the NVIDIA driver, or set device to 'cpu'"
                               % (device, getattr(torch, "__version__", "?"), getattr(torch.version, "cuda", None)))
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_dtype(torch: Any, options: Dict[str, Any], device: str) -> Any:
    """``dtype`` option, else bfloat16 on CUDA and float32 on CPU."""
    name = options.get("dtype") or ("bfloat16" if device.startswith("cuda") else "float32")
    dtype = getattr(torch, name, None) if name in ("bfloat16", "float16", "float32") else None
    if dtype is None:
        raise OptionError("option 'dtype' must be one of 'bfloat16', 'float16', 'float32' (got %r)" % (name,))
    return dtype


def prompt_for(fmt: str, defaults: Dict[str, str], options: Dict[str, Any]) -> str:
    """The prompt for ``text`` or ``markdown``: the model's own, unless the
    catalog's ``prompts`` option replaces it."""
    custom = options.get("prompts") or {}
    if not isinstance(custom, dict) or set(custom) - {"text", "markdown"} or not all(
            isinstance(v, str) for v in custom.values()):
        raise OptionError("option 'prompts' must be an object like {\"text\": \"...\", \"markdown\": \"...\"} "
                          "(got %r)" % (custom,))
    return str(custom.get(fmt) or defaults[fmt])


def page_images(images: Iterable[str]) -> List[Any]:
    """Decode every page first, so that a bad page fails the request before any GPU work."""
    from ._ocr_common import open_image

    return [open_image(path, n) for n, path in enumerate(images, 1)]


def positive(options: Dict[str, Any], key: str, default: int) -> int:
    """A positive integer catalog option (OptionError at load otherwise)."""
    return _options.positive_int(options, key, default)


def clean_repeats(text: str, min_len: int = 8000, min_repeats: int = 10) -> str:
    """Cut a runaway tail: a substring repeated many times at the end of a
    long generation (the clean-up HunyuanOCR's model card recommends)."""
    n = len(text)
    if n < min_len:
        return text
    for size in range(2, n // min_repeats + 1):
        unit = text[-size:]
        count, i = 0, n - size
        while i >= 0 and text[i:i + size] == unit:
            count += 1
            i -= size
        if count >= min_repeats:
            return text[:n - size * (count - 1)]
    return text


class HubWeights:
    """What a backend whose weights come from a hub adds for the gateway: its
    downloads (``weights_needed``, read by availability) and ``pull`` (run by
    `venvserve models pull`). Subclasses set ``DEFAULT_WEIGHTS``."""

    DEFAULT_WEIGHTS = ""
    # What GET /v1/models says of the model when the catalog runs it on the CPU.
    CPU_NOTE = "runs on the CPU (slow): a model built for a GPU; its device cuda runs it on one"

    @classmethod
    def weights_needed(cls, options: Dict[str, Any]) -> list:
        return [weights_ref(options or {}, cls.DEFAULT_WEIGHTS)]

    @classmethod
    def pull(cls, options: Dict[str, Any]) -> Dict[str, Any]:
        return pull_weights(options or {}, cls.DEFAULT_WEIGHTS)

