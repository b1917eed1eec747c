"""The gateway's own environment is lean: no numpy, opencv, onnxruntime or torch.

Three views, each honest about what it shows:
1. importing the gateway (app, CLI, gateway core) in a fresh interpreter loads none of them;
2. venvserve's declared dependencies, followed transitively through the installed
   metadata, contain none of them. (This dev machine does have numpy installed
   globally, pulled in by scipy, which is no dependency of venvserve: so the check
   is on what installing venvserve brings, not on what happens to be installed.)
3. the running server, after it served real OCR requests, has none of their
   native libraries mapped (/proc/PID/maps): all four load C extensions when imported.
"""

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from support import image_bytes, render_lines

FORBIDDEN_DISTS = {"numpy", "opencv-python", "opencv-python-headless", "opencv-contrib-python",
                   "onnxruntime", "onnxruntime-gpu", "torch"}
FORBIDDEN_MODULES = {"numpy", "cv2", "onnxruntime", "torch", "PIL", "pypdfium2", "pypdfium2_raw"}  # documents decode in decoder processes
# Shared objects each of those maps into a process that imports it.
NATIVE = re.compile(r"/(numpy|cv2|onnxruntime|torch)/|_multiarray_umath|libonnxruntime|libtorch|opencv_python")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_importing_the_gateway_loads_no_ml_stack(tmp_path):
    code = (
        "import json, sys\n"
        "import venvserve.api.app, venvserve.cli, venvserve.gateway, venvserve.ocr, venvserve.decode\n"
        "from venvserve.settings import Settings\n"
        "from pathlib import Path\n"
        f"venvserve.api.app.create_app(Settings.load(data_dir=Path({str(tmp_path / 'data')!r})))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    modules = {m.split(".")[0] for m in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert "fastapi" in modules and "venvserve" in modules  # the import did happen
    assert not modules & FORBIDDEN_MODULES, modules & FORBIDDEN_MODULES


def dependency_closure(root: str) -> dict[str, str]:
    """{distribution: who requires it} for ``root`` and everything it requires (no extras)."""
    from packaging.requirements import Requirement

    seen, todo = {normalise(root): "(root)"}, [root]
    while todo:
        name = todo.pop()
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an optional platform dependency that is not installed here
        for raw in requires:
            req = Requirement(raw)
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue
            key = normalise(req.name)
            if key not in seen:
                seen[key] = name
                todo.append(req.name)
    return seen


def test_venvserve_dependencies_bring_no_ml_stack():
    closure = dependency_closure("venvserve")
    assert {"fastapi", "uvicorn", "pillow", "pypdfium2", "uv"} <= set(closure), sorted(closure)
    pulled = {d: closure[d] for d in closure if d in {normalise(f) for f in FORBIDDEN_DISTS}}
    assert not pulled, f"venvserve's dependencies pull in {pulled} (distribution: required by)"


def test_ml_stack_installed_here_is_not_ours():
    """Where the dev machine has one of them installed anyway, nothing of venvserve's requires it."""
    closure = dependency_closure("venvserve")
    for dist in FORBIDDEN_DISTS:
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        assert normalise(dist) not in closure, f"{dist} is installed and required by {closure[normalise(dist)]}"


def test_running_server_maps_no_ml_libraries_after_ocr(ocr_server):
    for model in ("rapidocr", "tesseract"):
        r = ocr_server.client.post("/v1/ocr", files={"file": ("x.png", image_bytes(render_lines(["lean gateway"])))},
                                   data={"model": model})
        assert r.status_code == 200, r.text
    # A PDF too: the gateway rasterises it itself (pypdfium2 + Pillow, no numpy).
    page = render_lines(["pdf page"])
    r = ocr_server.client.post("/v1/ocr", files={"file": ("x.pdf", image_bytes(page, "PDF", resolution=200.0))},
                               data={"model": "tesseract"})
    assert r.status_code == 200, r.text

    def mapped(pid: int) -> set[str]:
        return {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                if "/" in line and NATIVE.search(line.split()[-1])}

    assert not mapped(ocr_server.pid), mapped(ocr_server.pid)
    # The check can see such libraries: the rapidocr worker maps them.
    worker = next(w for w in ocr_server.workers() if w["model"] == "rapidocr")
    assert {"numpy", "cv2", "onnxruntime"} <= {m for path in mapped(worker["pid"])
                                               for m in ("numpy", "cv2", "onnxruntime") if f"/{m}" in path}
