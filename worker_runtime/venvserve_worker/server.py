"""The worker process: load one backend, then serve it to the gateway.

Started by the gateway as ``python -m venvserve_worker`` with the interpreter
of the model's env and this runtime on PYTHONPATH; configured by the JSON in
``$VENVSERVE_WORKER_CONFIG``.
"""

import importlib
import json
import os
import sys
import threading
import time

from . import lifeline, protocol
from .backends.base import BackendError
from .http11 import TCPServer, UnixServer


def resolve_backend(architecture):
    target = protocol.BUILTIN_BACKENDS.get(architecture, architecture)
    module_name, _, class_name = target.partition(":")
    if not class_name:
        raise ValueError("architecture %r is neither built in nor 'module:Class'" % architecture)
    return getattr(importlib.import_module(module_name), class_name)


def rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def error(status, code, message):
    return status, {"error": {"code": code, "message": message}}


def backend_info(backend):
    """The backend's own facts (package versions), if it has any; never raises."""
    info = getattr(backend, "info", None)
    if info is None:
        return {}
    try:
        return info()
    except Exception as exc:  # info must never take the worker down
        return {"error": repr(exc)}


def call_backend(backend, request):
    """(status, answer): the backend's result, or its failure as a JSON error. Never raises:
    a BackendError keeps its status and code, anything else is a 500 and the worker serves on."""
    try:
        return 200, backend.infer(request)
    except BackendError as exc:
        return error(exc.status, exc.code, exc.message)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        return error(500, "backend_error", "%s: %s" % (type(exc).__name__, exc))


class Worker:
    """Routes the gateway's requests to the backend; owns in-flight counting."""

    def __init__(self, config, backend, load_ms):
        self.config = config
        self.backend = backend
        self.token = config.get("token") or ""
        self.compare_digest = None
        if self.token:  # hmac pulls in OpenSSL's hashlib (~3 MB resident): only a TCP worker needs it
            import hmac

            self.compare_digest = hmac.compare_digest
        self.started = time.time()
        self.load_ms = load_ms
        self.served = 0
        self.in_flight = 0
        self.draining = False
        self.cond = threading.Condition()
        self.slots = threading.BoundedSemaphore(max(1, int(config.get("max_concurrency") or 1)))

    def info(self):
        extra = backend_info(self.backend)
        return {
            "model": self.config["model"], "pid": os.getpid(),
            "python": {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable},
            "load_ms": self.load_ms, "started": self.started, "rss_mb": rss_mb(),
            "requests": self.served, "in_flight": self.in_flight, "packages": extra,
        }

    def __call__(self, request):
        if self.token and not self.compare_digest(
                request.headers.get(protocol.TOKEN_HEADER.lower(), ""), self.token):
            return error(401, "unauthorized", "missing or wrong worker token")
        route = (request.method, request.path)
        if route == ("GET", "/healthz"):
            return 200, {"status": "ok", "model": self.config["model"], "ready": not self.draining}
        if route == ("GET", "/info"):
            return 200, self.info()
        if route == ("POST", "/infer"):
            return self.infer(request)
        if route == ("POST", "/shutdown"):
            self.draining = True  # /healthz reports not ready from now on
            return 200, {"status": "draining"}
        return error(404, "not_found", "no route %s %s" % route)

    def infer(self, request):
        try:
            payload = request.json()
        except ValueError as exc:
            return error(400, "invalid_json", "request body is not JSON: %s" % exc)
        if not isinstance(payload, dict):
            return error(400, "invalid_json", "request body must be a JSON object")
        refused = self.check_inputs(payload)
        if refused:
            return refused
        with self.cond:
            self.in_flight += 1
        try:
            with self.slots:
                return call_backend(self.backend, payload)
        finally:
            with self.cond:
                self.in_flight -= 1
                self.served += 1
                self.cond.notify_all()

    def check_inputs(self, payload):
        """Input files must lie in the gateway's spool folder: no other path is ever read."""
        images = payload.get("images")
        if images is None:
            return None
        root = self.config.get("input_dir")
        if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
            return error(400, "invalid_request", "images must be a list of paths")
        if not root:
            return error(403, "path_refused", "this worker takes no input files")
        root = os.path.realpath(root) + os.sep
        for path in images:
            if not os.path.realpath(path).startswith(root):
                return error(403, "path_refused", "input files must come from the gateway's spool folder")
        return None

    def after_response(self, request, status):
        """Runs once a reply is written: /shutdown must not exit before its own answer."""
        if (request.method, request.path) == ("POST", "/shutdown") and status == 200:
            threading.Thread(target=self.shutdown, daemon=True).start()

    def shutdown(self):
        """Finish what is in flight, then exit (the gateway escalates if this hangs)."""
        with self.cond:
            self.draining = True
            while self.in_flight:
                self.cond.wait()
        sys.stderr.flush()
        os._exit(0)


def boot(config):
    """Import and load the backend; exit with EXIT_BOOT_ERROR if it cannot."""
    t0 = time.perf_counter()
    try:
        backend = resolve_backend(config["architecture"])()
        backend.load(config.get("options") or {})
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.write("venvserve-worker: model %r cannot boot\n" % config.get("model"))
        sys.stderr.flush()
        os._exit(protocol.EXIT_BOOT_ERROR)
    return backend, round((time.perf_counter() - t0) * 1000, 1)


def listen(config, worker):
    if config.get("socket"):
        return UnixServer(config["socket"], worker)
    return TCPServer((config.get("host") or "127.0.0.1", int(config.get("port") or 0)), worker)


def main():
    config = json.loads(os.environ.pop(protocol.CONFIG_ENV))
    lifeline.install(int(config["parent_pid"]))
    backend, load_ms = boot(config)
    worker = Worker(config, backend, load_ms)
    server = listen(config, worker)
    ready = dict(worker.info())
    if not config.get("socket"):
        ready["port"] = server.server_address[1]
    with os.fdopen(int(config["ready_fd"]), "w") as pipe:
        pipe.write(protocol.READY_PREFIX + json.dumps(ready) + "\n")
    server.serve_forever(poll_interval=3600)
