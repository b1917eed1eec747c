"""The in-process baseline of row 6: the rapidocr backend called directly, no gateway, no worker.

Run by the bench with the interpreter of the ``rapidocr`` env and the worker
runtime on PYTHONPATH (the same adapter code the worker runs, so the only
difference measured is the serving path). Stdlib-only apart from what the
env itself holds; Python 3.9 syntax.

    python ocr_inproc.py OPTIONS_JSON PAGE...

It loads the backend, prints one JSON line (load_ms, rss_mb), then for each
line ``round`` on stdin OCRs every page once, in order, and prints one JSON
line with the per-page seconds; ``quit`` (or EOF) ends it.
"""

import json
import os
import sys
import time


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def main():
    options = json.loads(sys.argv[1])
    pages = sys.argv[2:]
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    t0 = time.perf_counter()
    from venvserve_worker.backends.rapidocr import RapidOCRBackend

    backend = RapidOCRBackend()
    backend.load(options)
    load_ms = (time.perf_counter() - t0) * 1000
    print(json.dumps({"load_ms": round(load_ms, 1), "rss_mb": rss_mb()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        times, chars = [], 0
        for page in pages:
            t = time.perf_counter()
            answer = backend.infer({"task": "ocr", "images": [page], "format": "text"})
            times.append(time.perf_counter() - t)
            chars += len(answer["pages"][0]["text"])
        print(json.dumps({"seconds": times, "chars": chars, "rss_mb": rss_mb()}), flush=True)


if __name__ == "__main__":
    main()
