"""Can a model run on this machine? A yes, or a no with what to do about it.

Answers are cheap, because ``GET /v1/models`` asks for every model: the
checks look at PATH, NVML, the env templates and the model caches in the data
dir. A model whose weights are not cached is unavailable only when the hub is
switched off (HF_HUB_OFFLINE, VENVSERVE_OFFLINE): the gateway never probes a
hub itself, and otherwise the first load downloads them.
"""

import importlib
import os
import shutil
from pathlib import Path

from .catalog import ModelSpec
from .envs import EnvManager
from .errors import NotFound
from .system import gpu

# Architectures that shell out to a system binary, and how to get it.
SYSTEM_BINARIES = {
    "tesseract": ("tesseract", "install it: apt-get install tesseract-ocr (Debian/Ubuntu) "
                               "or brew install tesseract (macOS)"),
}

TRUE = ("1", "true", "yes", "on")


def check(spec: ModelSpec, envs: EnvManager) -> tuple[bool, str | None]:
    need = SYSTEM_BINARIES.get(spec.architecture)
    if need and not shutil.which(need[0]):
        return False, f"the `{need[0]}` binary is not on PATH; {need[1]}"
    if spec.device == "cuda" and not gpu.available():
        return False, ("needs a CUDA GPU and none was found (NVML lists no device); run it on a machine "
                       "with an NVIDIA GPU and driver (and nvidia-ml-py installed), or set its device to cpu")
    if spec.python:
        if not Path(spec.python).exists():
            return False, f"interpreter {spec.python} does not exist; fix the model's `python` field"
    elif spec.python_env:
        try:
            envs.template(spec.python_env)
        except NotFound as exc:
            return False, exc.message
    ok, reason = check_weights(spec, envs.root.parent)
    if ok and spec.device == "cpu":  # a GPU model's backend says what the CPU means for it
        reason = getattr(backend_class(spec.architecture), "CPU_NOTE", None)
    return ok, reason


# -- model weights ------------------------------------------------------------

def cache_env(data_dir: Path) -> dict[str, str]:
    """Where model libraries keep downloaded weights: in the data dir (a volume in
    Docker), unless the user set them. The same variables reach every worker."""
    caches = Path(data_dir) / "cache"
    return {
        "HF_HOME": os.environ.get("HF_HOME", str(caches / "huggingface")),
        "MODELSCOPE_CACHE": os.environ.get("MODELSCOPE_CACHE", str(caches / "modelscope")),
        "PADDLE_PDX_CACHE_HOME": os.environ.get("PADDLE_PDX_CACHE_HOME", str(caches / "paddlex")),
    }


def backend_class(architecture: str):
    """The built-in backend class (its module imports only the stdlib), or None."""
    from venvserve_worker import registry

    target = registry.BUILTIN_BACKENDS.get(architecture)
    if not target:
        return None
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def weights_needed(spec: ModelSpec) -> list[tuple[str, str, str | None]]:
    """(hub, name, revision) of every download the model's backend needs; [] for
    models whose files ship in their env (rapidocr) or the OS (tesseract)."""
    cls = backend_class(spec.architecture)
    needed = getattr(cls, "weights_needed", None)
    return [tuple(ref) for ref in needed(dict(spec.options))] if needed else []


def weights_path(ref: tuple, data_dir: Path) -> Path:
    hub, name, _ = ref
    env = cache_env(data_dir)
    if hub == "huggingface":
        return Path(env["HF_HOME"]) / "hub" / ("models--" + name.replace("/", "--"))
    if hub == "paddlex":
        return Path(env["PADDLE_PDX_CACHE_HOME"]) / "official_models" / name
    return Path(name)


def weights_present(ref: tuple, data_dir: Path) -> bool:
    hub, _, revision = ref
    path = weights_path(ref, data_dir)
    if hub == "huggingface":
        if revision and (path / "snapshots" / revision).is_dir():
            return True
        ref_file = path / "refs" / (revision or "main")
        if ref_file.is_file():
            return (path / "snapshots" / ref_file.read_text().strip() / "config.json").exists()
        return any(path.glob("snapshots/*/config.json"))
    return path.is_dir() and any(path.iterdir())


def check_weights(spec: ModelSpec, data_dir: Path) -> tuple[bool, str | None]:
    missing = [ref for ref in weights_needed(spec) if not weights_present(ref, data_dir)]
    if not missing:
        return True, None
    local = [ref for ref in missing if ref[0] == "local"]
    if local:
        return False, (f"the weights folder {local[0][1]} does not exist; fix the model option "
                       "`weights` (or the *_model_dir options)")
    hub = missing[0][0]
    names = ", ".join(ref[1] for ref in missing)
    why = hub_unreachable(hub)
    if why:
        return False, (f"its weights ({names}) are not in the data dir's model cache and {why}; "
                       f"run `venvserve models pull {spec.id}` where the hub is reachable (same data dir), "
                       "or point the model's options at a local copy")
    return True, None  # the first load downloads them


# -- may the hub be used? -----------------------------------------------------

# The gateway never probes a hub itself (no traffic leaves the machine on a
# GET /v1/models); it trusts the switches the hub libraries themselves obey.
OFFLINE_SWITCHES = {
    "huggingface": ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"),
    "paddlex": ("HF_HUB_OFFLINE", "VENVSERVE_OFFLINE"),
}


def hub_unreachable(hub: str) -> str | None:
    """Why the hub cannot be used now, or None (as far as the switches say, it can)."""
    for switch in OFFLINE_SWITCHES.get(hub, ()) + ("VENVSERVE_OFFLINE",):
        if os.environ.get(switch, "").strip().lower() in TRUE:
            return f"the hub is switched off ({switch})"
    return None
