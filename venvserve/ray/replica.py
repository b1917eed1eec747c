"""The per-model Serve deployment: one backend, loaded in the model's own env.

This module runs inside the model's env on a Ray node, where only the
model's locked packages, Ray and the stdlib worker runtime
(``venvserve_worker``, shipped with ``py_modules``) are importable. It must
therefore import nothing from the gateway (no pydantic models, no FastAPI).

The ingress sends page images as bytes (a replica on another node cannot
read the ingress's spool); the replica writes them into its own private temp
folder and hands the backend paths, exactly as a local worker gets them.
Answers are tagged dicts, so a backend's client errors travel as data and
only real failures (a dead replica) surface as Ray exceptions:

    {"ok": true, "result": {...}}
    {"ok": false, "status": 400, "code": "invalid_image", "message": "..."}
"""

import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def _failure(status, code, message):
    return {"ok": False, "status": status, "code": code, "message": message}


class ModelReplica:
    """Serve wraps this class with ``serve.deployment`` in ``deploy.py``.

    Kept a plain class so that Ray pickles it by reference (the module is
    importable on every node through ``py_modules``).
    """

    def __init__(self, model_id, architecture, options=None, max_concurrency=1):
        from venvserve_worker.registry import resolve_backend

        self.model_id = model_id
        self.started = time.time()
        t0 = time.perf_counter()
        self.backend = resolve_backend(architecture)()
        self.backend.load(dict(options or {}))
        self.load_ms = round((time.perf_counter() - t0) * 1000, 1)
        self.tmp = tempfile.mkdtemp(prefix="venvserve-ray-")
        os.chmod(self.tmp, 0o700)
        # Serve caps requests per replica with max_ongoing_requests (= the
        # catalog's max_concurrency); the backend runs in this many threads so
        # that the replica's event loop stays free for health checks.
        self.pool = ThreadPoolExecutor(max_workers=max(1, int(max_concurrency)),
                                       thread_name_prefix="venvserve-infer")
        self.lock = threading.Lock()
        self.served = 0
        self.in_flight = 0

    # -- requests ------------------------------------------------------------

    async def ocr(self, pages, fmt="text", options=None, dpi=None):
        """OCR page images given as bytes; answers ``{"pages": [...]}`` (tagged).

        ``dpi``: what a PDF page was rendered at, the request key ``dpi`` a worker gets (tesseract's ``--dpi``).
        """
        if not isinstance(pages, list) or not pages or not all(isinstance(p, (bytes, bytearray)) for p in pages):
            return _failure(400, "invalid_request", "pages must be a non-empty list of image bytes")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._ocr, pages, fmt, options or {}, dpi)

    async def infer(self, request):
        """Hand a JSON object to the backend as it is (``/v1/models/{id}/infer``)."""
        if not isinstance(request, dict):
            return _failure(400, "invalid_json", "request body must be a JSON object")
        if "images" in request:  # only the ingress names files, and only through ocr()
            return _failure(400, "reserved_field", "`images` is set by the server from uploaded files")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._run, request)

    def _ocr(self, pages, fmt, options, dpi=None):
        folder = tempfile.mkdtemp(dir=self.tmp)
        try:
            paths = []
            for number, data in enumerate(pages, start=1):
                path = os.path.join(folder, "page-%04d" % number)
                with open(path, "wb") as f:
                    f.write(data)
                paths.append(path)
            request = {"task": "ocr", "images": paths, "format": fmt, "options": options}
            if dpi is not None:
                request["dpi"] = dpi
            return self._run(request)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _run(self, request):
        from venvserve_worker.server import call_backend

        with self.lock:
            self.in_flight += 1
        try:
            status, answer = call_backend(self.backend, request)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.served += 1
        if status == 200:
            return {"ok": True, "result": answer}
        return _failure(status, answer["error"]["code"], answer["error"]["message"])

    # -- facts -----------------------------------------------------------------

    async def info(self):
        """Where this replica runs: node, pid, interpreter, env, backend facts."""
        from venvserve_worker.server import backend_info

        extra = backend_info(self.backend)
        try:
            import ray

            node = ray.util.get_node_ip_address()
        except Exception:
            node = None
        return {
            "model": self.model_id, "pid": os.getpid(), "node": node,
            "python": {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable,
                       "prefix": sys.prefix, "base_prefix": sys.base_prefix},
            "site_packages": [p for p in sys.path if p.endswith("site-packages")],
            "cwd": os.getcwd(), "load_ms": self.load_ms, "started": self.started,
            "requests": self.served, "in_flight": self.in_flight, "packages": extra,
        }

    def __del__(self):
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)
