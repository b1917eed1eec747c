"""What the worker runtime's reading order and tesseract path bought, measured in-process on
the same engine output: for rapidocr and rapidocr-v4, the fragments in the engine's own
order against the previous runtime's line grouping (c78617c) and this one's; for tesseract,
the previous pytesseract backend, the one that kept tesseract's block order (e68068b) and
this one, on the same images.

PDF pages are rendered here with pdftoppm at --pdf-dpi (the resolution stored in the PNG)."""

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

from bench.run import ROOT
from .gateway import score, summarise
from .report import save

OLD = "c78617c"  # the runtime before reading order, tesseract --dpi and markdown paragraphs
BLOCKS = "e68068b"  # the last runtime that kept tesseract's own block order
ENGINES = {"rapidocr": "venvserve_worker.backends.rapidocr:RapidOCRBackend",
           "rapidocr-v4": "venvserve_worker.backends.rapidocr_onnxruntime:RapidOCRv4Backend"}


def env_python(data_dir: Path, env: str) -> str:
    found = sorted((data_dir / "envs" / env).glob("*/bin/python"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no built env {env!r} under {data_dir}: run `python -m bench.quality run` first")
    return str(found[-1])


def old_runtime(work: Path, commit: str = OLD) -> Path:
    target = work / f"runtime-{commit}"
    if not target.exists():
        tar = subprocess.run(["git", "archive", commit, "worker_runtime"], cwd=ROOT, check=True,
                             capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            t.extractall(target)
    return target / "worker_runtime"


def images(pages, work: Path, dpi: int) -> list:
    from PIL import Image

    out = []
    for page in pages:
        path = Path(page["path"])
        if path.suffix == ".pdf":
            png = work / f"{path.stem}-{dpi}.png"
            if not png.exists():
                data = subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(path)],
                                      check=True, capture_output=True).stdout
                Image.open(io.BytesIO(data)).save(png, dpi=(dpi, dpi))
            path = png
        out.append(str(path))
    return out


def inproc(python: str, runtime: Path, args: list, stdin: str = None) -> list:
    env = dict(os.environ, PYTHONPATH=str(runtime), OMP_THREAD_LIMIT="1")
    done = subprocess.run([python, str(Path(__file__).with_name("inproc.py"))] + args, input=stdin, env=env,
                          check=True, capture_output=True, text=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def orders(args, pages) -> None:
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    old, new = old_runtime(work), ROOT / "worker_runtime"
    files = images(pages, work, args.pdf_dpi)
    rows = []
    for model in [m for m in args.models.split(",") if m in ENGINES]:
        python = env_python(args.data_dir, model)
        options = json.dumps({"intra_op_num_threads": 2})
        boxes = inproc(python, new, ["boxes", ENGINES[model], options] + files)
        frags = json.dumps([b["fragments"] for b in boxes])
        texts = {
            "engine order": ["\n".join(f["text"] for f in b["fragments"]) for b in boxes],
            "previous runtime": [r["text"] for r in inproc(
                python, old, ["layout", "venvserve_worker.backends._ocr_common:layout_text",
                              "venvserve_worker.backends._ocr_common:quad_to_box"], frags)],
            "this runtime": [r["text"] for r in inproc(
                python, new, ["layout", "venvserve_worker.backends._layout:layout_text",
                              "venvserve_worker.backends._reading_order:fragment"], frags)],
        }
        for how, outs in texts.items():
            for page, text, b in zip(pages, outs, boxes):
                rows.append({"model": f"{model} ({how})", "page": page["name"], "class": page["class"],
                             "text": text, "wall_s": b["wall_s"], "cpu_s": b["cpu_s"],
                             **score(page["truth_text"], text)})
    if "tesseract" in args.models.split(","):
        python = env_python(args.data_dir, "tesseract")
        spec = "venvserve_worker.backends.tesseract:TesseractBackend"
        variants = (("previous runtime", old), ("block order", old_runtime(work, BLOCKS)), ("this runtime", new))
        for how, runtime in variants:
            for page, r in zip(pages, inproc(python, runtime, ["infer", spec, "{}"] + files)):
                rows.append({"model": f"tesseract ({how})", "page": page["name"], "class": page["class"],
                             "text": r["text"], "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                             **score(page["truth_text"], r["text"])})
    save(args.out, "orders-dpi%d" % args.pdf_dpi, rows)
    from .report import by_model_and_class, per_page

    print(by_model_and_class(rows))
    print()
    print(per_page(rows))
    for model in dict.fromkeys(r["model"] for r in rows):
        print(model, summarise([r for r in rows if r["model"] == model]))
