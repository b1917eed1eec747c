"""A diagnostic backend: answers what it was sent, plus facts about its process.

It runs in any env (it needs nothing but the stdlib), so a catalog entry with
``architecture: echo`` and some ``python_env`` probes that env. Its knobs make
the failure modes the supervisor must survive reproducible:

load options: ``fail_load`` (raise in load), ``load_s`` (slow load),
``allocate_mb`` (hold that much resident memory), ``allocate_gpu_mb`` (hold
that much CUDA memory through torch, where the env has it).
request keys: ``sleep_s``, ``hang`` (sleep for ever), ``crash`` (exit at once),
``raise`` (raise an exception), ``packages`` (report their versions).
"""

import os
import sys
import time

from . import _options
from ._ocr_common import package_versions
from .base import BackendError


class EchoBackend:
    def load(self, options):
        if options.get("fail_load"):
            raise RuntimeError("echo: fail_load was set: %s" % options["fail_load"])
        load_s = _options.number(options, "load_s", 0.0)
        mb = _options.number(options, "allocate_mb", 0)
        gpu_mb = _options.number(options, "allocate_gpu_mb", 0)
        time.sleep(load_s)
        mb = int(mb)
        # bytearray pages are touched when created, so they count in RSS.
        self.ballast = bytearray(b"\1" * (mb * 1024 * 1024)) if mb else b""
        if gpu_mb:
            import torch

            self.gpu_ballast = torch.ones(int(gpu_mb) * 1024 * 1024, dtype=torch.uint8, device="cuda")

    def infer(self, request):
        if request.get("crash"):
            sys.stderr.write("echo: crashing as asked\n")
            sys.stderr.flush()
            os._exit(int(request.get("exit_code", 70)))
        if request.get("raise"):
            raise RuntimeError("echo: raising as asked: %s" % request["raise"])
        if isinstance(request.get("noise"), dict):
            return self.noise(request["noise"])
        if request.get("hang"):
            while True:
                time.sleep(3600)
        if request.get("sleep_s"):
            time.sleep(float(request["sleep_s"]))
        if request.get("task") == "ocr":
            return self.ocr(request)
        answer = dict(request)
        answer["pid"] = os.getpid()
        answer["python"] = {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable}
        if isinstance(request.get("packages"), list):
            answer["packages"] = package_versions(request["packages"])
        return answer

    def noise(self, spec):
        """Output as real models print it: ``\r`` progress bars with no newline for ``progress_s``
        seconds, ``tracebacks`` tracebacks, and ``binary_kb`` of raw bytes, all on stderr."""
        err = sys.stderr
        deadline = time.monotonic() + float(spec.get("progress_s", 0))
        step = 0
        while time.monotonic() < deadline:
            step += 1
            err.write("\rloading shards: %3d%% |%s|" % (step % 101, "#" * (step % 50)))
            err.flush()
            time.sleep(0.001)
        err.flush()
        if spec.get("binary_kb"):
            os.write(2, bytes(range(256)) * (4 * int(spec["binary_kb"])) + b"\n")
        for n in range(int(spec.get("tracebacks", 0))):
            err.write("Traceback (most recent call last):\n  File \"model.py\", line %d, in forward\n"
                      "ValueError: noise %d\n" % (n, n))
        err.flush()
        return {"pid": os.getpid(), "progress_steps": step}

    def ocr(self, request):
        # Reads only each page's size: the gateway's own cost, without a model's.
        # options.sleep_s stands for a model that takes that long a page off the CPU (a GPU model).
        # Job tests: ``tally`` (a file each call appends its ``page`` to, counting real runs),
        # ``crash_pages`` (exit on these pages; with ``crash_once`` only the first time) and
        # ``dims`` (answer a PNG page's pixel size, which tells pages apart); ``show_dpi`` adds
        # the request's ``dpi`` key (" @200"), the resolution the gateway rendered a PDF page at.
        options = request.get("options") or {}
        if options.get("tally"):
            with open(options["tally"], "a") as f:
                f.write("%s\n" % request.get("page"))
        if request.get("page") in (options.get("crash_pages") or []):
            marker = "%s.crashed-%s" % (options["tally"], request["page"]) if options.get("crash_once") else None
            if marker is None or not os.path.exists(marker):
                if marker:
                    open(marker, "w").close()
                os._exit(70)
        time.sleep(float(options.get("sleep_s", 0)))
        pages = []
        for number, path in enumerate(request.get("images") or [], start=1):
            try:
                size = os.path.getsize(path)
                with open(path, "rb") as f:
                    head = f.read(24)
            except OSError as exc:
                raise BackendError("invalid_input", "cannot read page %d: %s" % (number, exc))
            if options.get("dims") and head[:8] == b"\x89PNG\r\n\x1a\n":
                text = "%dx%d" % (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))
            else:
                text = "%d bytes" % size
            if options.get("show_dpi"):
                text += " @%s" % request.get("dpi")
            pages.append({"page": number, "text": text})
        return {"pages": pages}

    def info(self):
        return {}
