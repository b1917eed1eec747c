"""The supervisor: the façade the API, the OCR pipeline and jobs call.

    supervisor.py    this: intents in (infer, load, unload, shutdown), views and events out
    model.py         one actor per model, the only writer of its state
    boot.py          one attempt to start a worker (a task its actor owns)
    routing.py       picking a replica, the bounded queue, back-pressure
    placement.py     the memory budget and eviction
    housekeeping.py  idle unload, health checks, memory sampling off the loop
    process.py       one worker process; output.py its output; client.py its HTTP

Everything here runs on the gateway's event loop. Callers ask for intent and
never "check state, then act".
"""

import asyncio
import itertools
import logging
import time
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

from .. import availability
from ..catalog import Catalog
from ..envs import EnvManager
from ..errors import GatewayTimeout, Unavailable
from ..settings import Settings
from ..system import gpu
from . import events
from .client import WorkerGone
from .housekeeping import Housekeeping
from .logring import LogLine, LogRing
from .model import ModelActor
from .placement import Placement
from .runtime_path import runtime_path
from .state import LIVE, ROUTABLE, Activity, WorkerState
from .worker import Worker, crash_error

log = logging.getLogger("venvserve.supervisor")

SHUTDOWN = "venvserve is shutting down"  # the message of a cancellation that shutdown sends


class Supervisor:
    def __init__(self, settings: Settings, catalog: Catalog, envs: EnvManager, run_dir: Path):
        self.settings = settings
        self.catalog = catalog
        self.envs = envs
        self.run_dir = run_dir
        self.runtime = runtime_path(settings.data_dir)
        self.actors: dict[str, ModelActor] = {}
        self.draining = False
        self.housekeeping = Housekeeping(self, settings.data_dir / "measured.json")
        gpu_total = gpu.total_memory_mb() if settings.gpu_memory_budget_mb < 0 else 0
        self.placement = Placement(settings, self, gpu_total)
        self._subscribers: list[Callable[[events.Event], None]] = []
        self._rings: dict[str, LogRing] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()

    # -- services the actors use ------------------------------------------------------

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def next_worker_id(self) -> int:
        return next(self._ids)

    def worker_env(self) -> dict:
        return {"VENVSERVE_DATA_DIR": str(self.settings.data_dir), **availability.cache_env(self.settings.data_dir)}

    def ring(self, model_id: str) -> LogRing:
        ring = self._rings.get(model_id)
        if ring is None:
            ring = self._rings[model_id] = LogRing(self.settings.log_lines)
        return ring

    def emit(self, event: events.Event) -> None:
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:
                log.exception("an event subscriber failed on %s", event)

    def subscribe(self, fn: Callable[[events.Event], None]) -> Callable[[], None]:
        """Call ``fn(event)`` for every event; returns the function that unsubscribes."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    # -- intents ------------------------------------------------------------------------

    async def start(self) -> None:
        self.housekeeping.gpu = await asyncio.to_thread(gpu.available)
        self.spawn(self.housekeeping.run())

    def _actor(self, model_id: str, create: bool = True) -> ModelActor | None:
        actor = self.actors.get(model_id)
        spec = self.catalog.require(model_id)
        ok, reason = availability.check(spec, self.envs)
        if not ok:
            raise Unavailable(f"model {model_id!r} is not available: {reason}", code="model_unavailable")
        if actor is None and create:
            actor = self.actors[model_id] = ModelActor(spec, self)
        return actor

    async def infer(self, model_id: str, payload: dict, timeout: float | None = None,
                    disconnected: Callable[[], Awaitable[bool]] | None = None) -> dict:
        """Run one request on a worker of the model, spawning one if needed.

        ``disconnected`` is polled while the request waits in the queue: a
        client that has gone away leaves the queue instead of taking a worker.
        """
        return await self._call(model_id, lambda w, t: w.client.call("POST", "/infer", payload, t),
                                timeout, disconnected)

    async def infer_raw(self, model_id: str, body: bytes, timeout: float | None = None,
                        disconnected: Callable[[], Awaitable[bool]] | None = None) -> tuple[int, bytes]:
        """Forward a JSON body as it is; the worker's status and body bytes come back unchanged."""
        return await self._call(model_id, lambda w, t: w.client.call_raw("POST", "/infer", body, t),
                                timeout, disconnected)

    async def _call(self, model_id: str, exchange, timeout: float | None, disconnected):
        actor = self._actor(model_id)
        timeout = timeout or self.settings.request_timeout_s
        t0, since = time.perf_counter(), time.monotonic()
        worker = None
        try:
            worker = await actor.acquire(disconnected)
            t1 = time.perf_counter()
            waited = queued = t1 - t0
            env_build = load = 0.0
            if worker.ready_at >= since:  # the worker came up while this request waited: say what for
                load = min(worker.load_s, waited)
                env_build = min(worker.env_build_s, waited - load)
                queued = waited - load - env_build
            try:
                return await exchange(worker, timeout)
            except WorkerGone as exc:
                # Before its slot is given back: crash_error waits for the process to end, so the
                # next request in line is not handed the dead worker (pick() skips it).
                raise await crash_error(worker, exc) from None
            finally:
                actor.release(worker, asyncio.current_task())
                self.emit(events.RequestDone(model_id, queued, time.perf_counter() - t1, env_build, load))
        except GatewayTimeout:
            if worker is not None:
                log.warning("model %s: request timed out after %.0fs on pid %s; replacing the worker",
                            model_id, timeout, worker.pid)
                worker.process.output.note(f"a request timed out after {timeout:.0f}s: replaced")
                self.spawn(actor.stop(worker, drain=False))
            raise
        except asyncio.CancelledError as exc:
            if not _is_shutdown(exc):
                raise  # the client left: the connection was discarded, the queue left
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            raise Unavailable("the server is shutting down", code="shutting_down",
                              hint="retry against another instance, or once it is back") from None

    async def load(self, model_id: str) -> list[Worker]:
        """Start the model's workers (all replicas) and wait until they are ready."""
        return await self._actor(model_id).load(self.settings.load_timeout_s)

    async def unload(self, model_id: str) -> int:
        """Stop the model's workers once their in-flight requests finish; a start under way is aborted."""
        actor = self.actors.get(model_id)  # a model with workers unloads even if it turned unavailable
        if actor is None:
            self._actor(model_id, create=False)  # unknown or unavailable: the same error as elsewhere
            return 0
        return await actor.unload()

    async def shutdown(self, grace: float) -> None:
        """Refuse new and queued requests, give in-flight ones ``grace`` seconds, stop everything.

        Requests still running after the grace period are answered 503 shutting_down.
        """
        self.draining = True
        refusal = Unavailable("the server is shutting down", code="shutting_down")
        for actor in self.actors.values():
            actor.router.fail_all(refusal)
        deadline = time.monotonic() + grace
        while any(w.calls for a in self.actors.values() for w in a.workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for actor in self.actors.values():
            for w in actor.workers:
                for task in list(w.calls):
                    if task is not None:
                        task.cancel(msg=SHUTDOWN)
        with_timeout = asyncio.wait_for(self.housekeeping.sample(), 5.0)  # the last figures for measured.json
        await asyncio.gather(with_timeout, return_exceptions=True)
        await asyncio.gather(*(a.unload() for a in self.actors.values()), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()

    # -- logs -----------------------------------------------------------------------------

    def logs(self, model_id: str, n: int = 100) -> list[LogLine]:
        """The model's last ``n`` worker output lines (time, pid, text), oldest first."""
        return self.ring(model_id).tail(n)

    def follow_logs(self, model_id: str, tail: int = 0) -> AsyncIterator[LogLine]:
        """The last ``tail`` lines, then each new one as its workers write it."""
        return self.ring(model_id).follow(tail)

    # -- views ------------------------------------------------------------------------------

    def worker_views(self) -> list[dict]:
        now, hk = time.monotonic(), self.housekeeping
        return [{
            "id": w.id, "model": w.model, "pid": w.pid, "env": w.env, "python": w.python, "address": w.address,
            "state": w.state.value, "started_at": w.started_at,
            "idle_s": round(now - w.last_used, 1) if not w.calls else 0.0,
            "in_flight": w.in_flight, "requests": w.served, "rss_mb": hk.rss_mb(w), "gpu_mb": hk.gpu_mb(w),
            "ready_ms": w.process.ready_ms, "load_ms": w.process.info.get("load_ms"),
        } for actor in self.actors.values() for w in actor.workers if w.state in LIVE]

    def model_state(self, model_id: str) -> dict:
        actor = self.actors.get(model_id)
        if actor is None:
            return {"state": "unloaded", "activity": Activity.IDLE.value, "workers": 0, "queued": 0, "spawns": 0,
                    "failed_reason": None}
        live = actor.live()
        if actor.failed_reason:
            state = "failed"
        elif any(w.state in ROUTABLE for w in live):
            state = "loaded"
        elif actor.booting or any(w.state is WorkerState.STARTING for w in live):
            state = "loading"
        else:
            state = "unloaded"
        return {"state": state, "activity": actor.activity.value, "workers": len(live),
                "queued": actor.router.queued, "spawns": actor.spawns, "failed_reason": actor.failed_reason}

    def budget_view(self) -> dict:
        return self.placement.view()

    def in_use(self) -> set[Path]:
        return {w.venv for actor in self.actors.values() for w in actor.workers
                if w.venv is not None and w.state in LIVE}


def _is_shutdown(exc: asyncio.CancelledError) -> bool:
    """A cancellation sent by a shutdown (ours, or the HTTP server's past its graceful timeout)."""
    return any(isinstance(arg, str) and ("shutting down" in arg or "shutdown" in arg) for arg in exc.args)
