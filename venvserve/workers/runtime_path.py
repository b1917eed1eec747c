"""Where the worker runtime lives, as a folder fit for a worker's PYTHONPATH.

The folder must hold the runtime package and nothing else: a wheel install
puts ``venvserve_worker`` in the gateway's site-packages, and that whole
folder on a model env's path would leak the gateway's packages into it.
"""

import hashlib
import shutil
from pathlib import Path

import venvserve_worker

PACKAGE = Path(venvserve_worker.__file__).resolve().parent


def _digest() -> str:
    h = hashlib.sha256()
    for f in sorted(PACKAGE.rglob("*.py")):
        h.update(str(f.relative_to(PACKAGE)).encode() + f.read_bytes())
    return h.hexdigest()[:12]


def runtime_path(data_dir: Path) -> Path:
    parent = PACKAGE.parent
    if {p.name for p in parent.iterdir()} - {"__pycache__"} == {PACKAGE.name}:
        return parent
    target = Path(data_dir) / "runtime" / _digest()
    if not (target / PACKAGE.name / "__init__.py").exists():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(PACKAGE, tmp / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target
