"""rapidocr-v4 (PP-OCRv4) and the spaces between words in small type, in-process.

The same pages at several render resolutions and recognition input heights; the
measure is the word F1 and the share of the truth's spaces the answer keeps (a glued
"ContentslistsavailableatScienceDirect" loses the F1 of five words at once)."""

import json

from bench.run import ROOT
from .metrics import normalise, word_f1
from .orders import env_python, images, inproc
from .report import save

SPEC = "venvserve_worker.backends.rapidocr_onnxruntime:RapidOCRv4Backend"
TRIALS = [  # (render dpi, engine params)
    (200, {}), (300, {}), (200, {"rec_img_shape": [3, 64, 320]}),
]
DEFAULT_PAGES = ("pdfmark-p3",)


def spaces(args, pages) -> None:
    if not args.pages:
        pages = [p for p in pages if p["name"] in DEFAULT_PAGES]
    work = args.out / "work"
    python = env_python(args.data_dir, "rapidocr-v4")
    rows = []
    for dpi, params in TRIALS:
        options = json.dumps({"intra_op_num_threads": 2, "params": params})
        for page, r in zip(pages, inproc(python, ROOT / "worker_runtime",
                                         ["infer", SPEC, options] + images(pages, work, dpi))):
            truth, text = normalise(page["truth_text"]), normalise(r["text"])
            row = {"page": page["name"], "dpi": dpi, "params": params, "word_f1": round(word_f1(truth, text), 3),
                   "spaces_kept": round(text.count(" ") / max(1, truth.count(" ")), 3), "cpu_s": r["cpu_s"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    save(args.out, "spaces", rows)
