"""`venvserve doctor`: can this machine build the envs and run the models?

Each check answers ok, warn (something some models need is missing) or fail
(nothing would work: no uv, an unreadable catalog, no disk), with a hint
saying what to do. The command exits 1 when any check fails.
"""

import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import availability
from .catalog import Catalog, CatalogError, load_catalog
from .envs import EnvManager, venvinfo
from .envs.manager import uv_binary
from .errors import VenvserveError
from .settings import Settings
from .system import gpu

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_FREE_GB = 1.0  # below: fail
LOW_FREE_GB = 5.0  # below: warn (one torch env takes several GB)


@dataclass
class Check:
    name: str
    level: str
    detail: str
    hint: str | None = None


def run(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    catalog = _catalog(settings, checks)
    uv = _uv(checks)
    envs = EnvManager(settings.templates_dir, settings.data_dir)  # reads only: no build from here
    for name in envs.names():
        checks.append(_env_python(envs, name, uv))
    checks.append(_tesseract(catalog))
    checks.append(_gpus(catalog))
    checks.append(_disk(settings.data_dir))
    if catalog is not None:
        checks.append(_models(catalog, envs))
    return checks


def _run(cmd: list[str], env: dict | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def _catalog(settings: Settings, checks: list[Check]) -> Catalog | None:
    try:
        catalog = load_catalog(settings.catalog, settings.default_model)
    except CatalogError as exc:
        checks.append(Check("catalog", FAIL, str(exc), "fix the file, or pass --catalog PATH"))
        return None
    checks.append(Check("catalog", OK, f"{len(catalog)} models in {settings.catalog}"))
    return catalog


def _uv(checks: list[Check]) -> str | None:
    try:
        uv = uv_binary()
        version = _run([uv, "--version"]).stdout.strip()
    except (VenvserveError, OSError, subprocess.SubprocessError) as exc:
        checks.append(Check("uv", FAIL, f"uv cannot be run: {exc}", "pip install uv"))
        return None
    checks.append(Check("uv", OK, f"{version} ({uv})"))
    return uv


def _env_python(envs: EnvManager, name: str, uv: str | None) -> Check:
    label = f"env {name}"
    template = envs.template(name)
    spec = template.pinned_python() or template.requires_python()
    lock = "" if template.has_lock else " (no uv.lock)"
    lock_hint = None if template.has_lock else f"run `venvserve envs lock {name}`, then commit envs/{name}/uv.lock"
    built = envs.status(name)
    if built.path is not None and built.state.value in ("ready", "outdated", "external"):
        # The interpreter uv built the env with, not the one that would be found now.
        version = venvinfo.python_version(built.path) or "?"
        detail = f"Python {version} ({built.state.value}, {venvinfo.python_of(built.path)}){lock}"
        return Check(label, WARN if lock else OK, detail, lock_hint)
    if not spec:
        return Check(label, WARN if lock else OK, f"any Python{lock}", lock_hint)
    if uv is None:
        return Check(label, FAIL, f"cannot look for Python {spec} without uv", "pip install uv")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    try:
        found = _run([uv, "python", "find", spec], env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return Check(label, FAIL, f"`uv python find {spec!r}` failed: {exc}")
    if found.returncode == 0:
        detail = f"not built; for Python {spec} uv would use {found.stdout.strip()}{lock}"
        return Check(label, WARN if lock else OK, detail, lock_hint)
    downloads = os.environ.get("UV_PYTHON_DOWNLOADS", "automatic") != "never" and not os.environ.get("UV_OFFLINE")
    detail = f"no interpreter for Python {spec} on this machine"
    if downloads:
        return Check(label, WARN, detail + "; uv will download one on the first build",
                     f"to build offline, run `uv python install '{spec}'` now")
    return Check(label, FAIL, detail, f"uv python install '{spec}'")


def _tesseract(catalog: Catalog | None) -> Check:
    users = [m.id for m in catalog or [] if m.architecture == "tesseract"]
    needed_by = f" (needed by {', '.join(users)})" if users else ""
    binary = shutil.which("tesseract")
    if not binary:
        return Check("tesseract", WARN, f"the tesseract binary is not on PATH{needed_by}",
                     "apt-get install tesseract-ocr (Debian/Ubuntu) or brew install tesseract (macOS)")
    try:
        version = _run([binary, "--version"]).stdout.splitlines()[:1]
        langs = set(_run([binary, "--list-langs"]).stdout.split()[1:])
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        return Check("tesseract", WARN, f"{binary} does not run: {exc}", "reinstall tesseract-ocr")
    wanted = {lang for m in catalog or [] if m.architecture == "tesseract"
              for lang in str(m.options.get("lang", "eng")).split("+")}
    missing = sorted(wanted - langs)
    detail = f"{version[0] if version else 'tesseract'} ({binary})"
    if missing:
        return Check("tesseract", WARN, f"{detail}: no language data for {', '.join(missing)}",
                     "apt-get install " + " ".join(f"tesseract-ocr-{lang}" for lang in missing))
    return Check("tesseract", OK, detail)


def _gpus(catalog: Catalog | None) -> Check:
    users = [m.id for m in catalog or [] if m.device == "cuda"]
    needed_by = f" (needed by {', '.join(users)})" if users else ""
    if gpu.available():
        return Check("gpu", OK, f"NVML: {gpu.total_memory_mb() / 1024:.1f} GiB of GPU memory, "
                                f"{gpu.used_memory_mb() / 1024:.1f} GiB in use")
    driver = Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None
    if driver and importlib.util.find_spec("pynvml") is None:
        return Check("gpu", WARN, f"an NVIDIA driver is present but pynvml is not installed{needed_by}",
                     "pip install nvidia-ml-py (the gateway reads GPU memory through NVML)")
    if users:
        return Check("gpu", WARN, f"no GPU found through NVML{needed_by}",
                     "run those models on a machine with an NVIDIA GPU, or set their device to cpu")
    return Check("gpu", OK, "no GPU found through NVML; no model of the catalog needs one")


def _models(catalog: Catalog, envs: EnvManager) -> Check:
    missing = []
    for spec in catalog:
        ok, reason = availability.check(spec, envs)
        if not ok:
            missing.append(f"{spec.id} ({reason.partition('; ')[0]})")
    if missing:
        return Check("models", WARN, f"{len(catalog) - len(missing)} of {len(catalog)} available; "
                                     f"unavailable: {', '.join(missing)}",
                     "`venvserve models list` says what each one needs")
    return Check("models", OK, f"all {len(catalog)} available")


def _disk(data_dir: Path) -> Check:
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_gb = shutil.disk_usage(probe).free / 2**30
    detail = f"{free_gb:.1f} GiB free in {data_dir}"
    if not os.access(probe, os.W_OK):
        return Check("disk", FAIL, f"{probe} is not writable", "pass --data-dir on a writable disk")
    if free_gb < MIN_FREE_GB:
        return Check("disk", FAIL, detail, "free some space, or pass --data-dir on a larger disk")
    if free_gb < LOW_FREE_GB:
        return Check("disk", WARN, detail, "GPU envs (torch) take several GiB each; "
                                           "`venvserve envs remove NAME` frees an env")
    return Check("disk", OK, detail)
