"""Can a model run on this machine? A yes, or a no with what to do about it."""

import shutil
from pathlib import Path

from .catalog import ModelSpec
from .envs import EnvManager
from .errors import NotFound
from .workers import gpu

# Architectures that shell out to a system binary, and how to get it.
SYSTEM_BINARIES = {
    "tesseract": ("tesseract", "install it: apt-get install tesseract-ocr (Debian/Ubuntu) "
                               "or brew install tesseract (macOS)"),
}


def check(spec: ModelSpec, envs: EnvManager) -> tuple[bool, str | None]:
    need = SYSTEM_BINARIES.get(spec.architecture)
    if need and not shutil.which(need[0]):
        return False, f"the `{need[0]}` binary is not on PATH; {need[1]}"
    if spec.device == "cuda" and not gpu.available():
        return False, "needs a CUDA GPU and none was found (NVML lists no device)"
    if spec.python:
        if not Path(spec.python).exists():
            return False, f"interpreter {spec.python} does not exist; fix the model's `python` field"
    elif spec.python_env:
        try:
            envs.template(spec.python_env)
        except NotFound as exc:
            return False, exc.message
    return True, None
