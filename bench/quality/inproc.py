"""Run inside an engine's env (stdlib + the env's packages, Python 3.9), with a worker
runtime on PYTHONPATH: this tree's, or an older one's for a before/after comparison.

    python inproc.py boxes  MODULE:CLASS OPTIONS_JSON IMAGE...   # fragments in the engine's own order
    python inproc.py infer  MODULE:CLASS OPTIONS_JSON IMAGE...   # the backend's answer text
    python inproc.py layout MODULE:FUNCTION < boxes.json          # lay out fragments with that runtime

Prints one JSON object per image (or per page of boxes) with the CPU seconds the call
took in this process and in the processes it waited for (tesseract)."""

import importlib
import json
import os
import resource
import sys
import time


def cpu():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load(spec):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def main():
    mode, spec = sys.argv[1], sys.argv[2]
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    if mode == "layout":
        layout = load(spec)
        to_fragment = load(sys.argv[3])
        for page in json.load(sys.stdin):
            text = layout([to_fragment(f["quad"], f["text"]) for f in page])
            print(json.dumps({"text": text}), flush=True)
        return
    backend = load(spec)()
    backend.load(json.loads(sys.argv[3]))
    for n, path in enumerate(sys.argv[4:], 1):
        c0, t0 = cpu(), time.perf_counter()
        if mode == "boxes":
            from venvserve_worker.backends._ocr_common import open_image

            frags = backend._recognise(open_image(path, 1), False)
            out = {"fragments": [{"quad": [list(p) for p in f.quad], "text": f.text} for f in frags]}
        else:
            out = {"text": backend.infer({"task": "ocr", "images": [path]})["pages"][0]["text"]}
        out.update(path=path, cpu_s=round(cpu() - c0, 3), wall_s=round(time.perf_counter() - t0, 3))
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
