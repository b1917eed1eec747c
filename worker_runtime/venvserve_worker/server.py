"""The worker process: load one backend, then serve it to the gateway.

Started by the gateway as ``python -m venvserve_worker`` with the interpreter
of the model's env and this runtime on PYTHONPATH; configured by the JSON in
``$VENVSERVE_WORKER_CONFIG``: model, architecture, options, max_concurrency,
socket (or host and port, with token), ready_fd, parent_pid, input_dir, and
optionally max_body_bytes (default protocol.DEFAULT_MAX_BODY_BYTES) and
idle_timeout_s (an idle keep-alive connection is closed after it, default 3600).
"""

import json
import os
import sys
import threading
import time

from . import lifeline, protocol
from .backends.base import BackendError, LoadError
from .connections import Server, listen_tcp, listen_unix
from .http11 import Limits
from .registry import resolve_backend


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


class App:
    """The worker's routes: the gateway's requests to the backend; owns in-flight counting."""

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
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(max(1, int(config.get("max_concurrency") or 1)))

    def info(self):
        extra = backend_info(self.backend)
        return {
            "model": self.config["model"], "pid": os.getpid(),
            "python": {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable},
            "load_ms": self.load_ms, "started": self.started, "rss_mb": rss_mb(),
            "requests": self.served, "in_flight": self.in_flight, "packages": extra,
        }

    def token_ok(self, headers):
        """Bytes against bytes: a header of any characters compares, never raises."""
        given = headers.get(protocol.TOKEN_HEADER.lower(), "").encode("latin-1")
        return self.compare_digest(given, self.token.encode("utf-8"))

    def check(self, head):
        """Before the body is read: a request without the right token is refused unread."""
        if self.token and not self.token_ok(head.headers):
            return error(401, "unauthorized", "missing or wrong worker token")
        return None

    def __call__(self, request):
        if self.token and not self.token_ok(request.headers):
            return error(401, "unauthorized", "missing or wrong worker token")
        route = (request.method, request.path)
        if route == ("GET", "/healthz"):
            return 200, {"status": "ok", "model": self.config["model"], "ready": True}
        if route == ("GET", "/info"):
            return 200, self.info()
        if route == ("POST", "/infer"):
            return self.infer(request)
        return error(404, "not_found", "no route %s %s" % route)

    def infer(self, request):
        try:
            payload = request.json()
        except ValueError as exc:
            return error(400, "invalid_json", "request body is not JSON: %s" % exc)
        except RecursionError:
            return error(400, "invalid_json", "request body is nested too deeply")
        if not isinstance(payload, dict):
            return error(400, "invalid_json", "request body must be a JSON object")
        refused = self.check_inputs(payload)
        if refused:
            return refused
        with self.lock:
            self.in_flight += 1
        try:
            with self.slots:
                return call_backend(self.backend, payload)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.served += 1

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


Worker = App  # the former name, kept until tests/e2e/test_security.py moves to App


def boot_failure(exc):
    """The one line that says why the model cannot load, in plain words."""
    if isinstance(exc, LoadError):
        return str(exc)
    if isinstance(exc, ModuleNotFoundError):
        return "module %r is not installed in the model's env (%s)" % (exc.name, exc)
    if isinstance(exc, (ImportError, AttributeError)):
        return "the backend cannot be imported: %s" % exc
    if isinstance(exc, MemoryError):
        return "out of memory while loading the model"
    text = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, text[0] if text else "(no message)")


def boot(config):
    """Import and load the backend; exit with EXIT_BOOT_ERROR and one line of reason if it cannot."""
    t0 = time.perf_counter()
    try:
        backend = resolve_backend(config["architecture"])()
        backend.load(config.get("options") or {})
    except BaseException as exc:
        if not isinstance(exc, LoadError):
            import traceback

            traceback.print_exc()
        reason = " ".join(boot_failure(exc).split())  # one line, whatever the message held
        sys.stderr.write(protocol.BOOT_FAILURE_PREFIX + reason + "\n")
        sys.stderr.flush()
        os._exit(protocol.EXIT_BOOT_ERROR)
    return backend, round((time.perf_counter() - t0) * 1000, 1)


def listen(config, worker):
    if config.get("socket"):
        sock = listen_unix(config["socket"])
    else:
        sock = listen_tcp(config.get("host") or "127.0.0.1", int(config.get("port") or 0))
    limits = Limits(max_body=int(config.get("max_body_bytes") or protocol.DEFAULT_MAX_BODY_BYTES))
    # Requests beyond max_concurrency wait for a backend slot; two more threads
    # keep /healthz and /info answering while every slot is busy.
    threads = max(1, int(config.get("max_concurrency") or 1)) + 2
    return Server(sock, worker, threads=threads, limits=limits,
                  idle_timeout=float(config.get("idle_timeout_s") or 3600.0))


def main():
    config = json.loads(os.environ.pop(protocol.CONFIG_ENV))
    lifeline.install(int(config["parent_pid"]))
    backend, load_ms = boot(config)
    worker = App(config, backend, load_ms)
    server = listen(config, worker)
    ready = dict(worker.info())
    if not config.get("socket"):
        ready["port"] = server.address[1]
    with os.fdopen(int(config["ready_fd"]), "w") as pipe:
        pipe.write(protocol.READY_PREFIX + json.dumps(ready) + "\n")
    server.serve_forever()
