"""Conflicts a resolver does not see: two distributions that install the same
top-level module, known from a table and from the RECORDs of built envs."""

from pathlib import Path

from .templates import TemplateInfo, canonical

# Distributions that install the same top-level module: two of one row in one
# env overwrite each other's files, which no resolver notices.
MODULE_OWNERS = {
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "rapidocr": ("rapidocr", "rapidocrlite"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                    "onnxruntime-silicon"),
    "paddle": ("paddlepaddle", "paddlepaddle-gpu"),
    "PIL": ("pillow", "pillow-simd"),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel"),
    "fitz": ("pymupdf", "fitz"),
    "jwt": ("pyjwt", "jwt"),
    "magic": ("python-magic", "filemagic"),
    "serial": ("pyserial", "serial"),
    "bson": ("pymongo", "bson"),
    "faiss": ("faiss-cpu", "faiss-gpu"),
}


def dist_of(dist_info: Path) -> str:
    return canonical(dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0])


def installed_files(venv: Path | None) -> dict[str, tuple[str, str, int]]:
    """path → (hash, distribution, size) from the RECORD files of a built venv."""
    out: dict[str, tuple[str, str, int]] = {}
    for record in (venv.glob("lib/python3*/site-packages/*.dist-info/RECORD") if venv else []):
        dist = dist_of(record.parent)
        try:
            rows = record.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for row in rows:
            path, _, rest = row.partition(",")
            digest, _, size = rest.partition(",")
            if not path or path.startswith("..") or ".dist-info/" in path or "__pycache__" in path:
                continue
            out[path] = (digest, dist, int(size) if size.isdigit() else 0)
    return out


def module_clashes(templates: list[TemplateInfo], packages: set[str],
                   files_of) -> dict[str, tuple[str, ...]]:
    """module → the distributions of ``packages`` that both install it."""
    clashes: dict[str, tuple[str, ...]] = {}
    for module, owners in MODULE_OWNERS.items():
        present = tuple(d for d in owners if d in packages)
        if len(present) > 1:
            clashes[module] = present
    # Envs already built: two distributions writing one path with different contents.
    seen: dict[str, tuple[str, str]] = {}
    for t in templates:
        for path, (digest, dist, _size) in files_of(t.name).items():
            if dist not in packages:
                continue
            other = seen.setdefault(path, (digest, dist))
            if other[1] != dist and other[0] != digest:
                module = path.split("/", 1)[0].removesuffix(".py")
                clashes.setdefault(module, tuple(sorted({other[1], dist})))
    return clashes
