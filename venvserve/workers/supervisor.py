"""The supervisor: the single owner of every worker and its state.

Everything here runs on the gateway's event loop, so state changes need no
locks; callers ask for intent (``infer``, ``load``, ``unload``) and never
"check state, then act". It spawns lazily, routes to the least busy
replica, queues with a bound, evicts idle workers to stay within the memory
budget, unloads idle models, replaces hung ones, and fails the requests of
a crashed worker at once with its last stderr lines.
"""

import asyncio
import collections
import itertools
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from .. import availability
from ..catalog import Catalog, ModelSpec
from ..envs import EnvManager
from ..errors import (ClientGone, GatewayTimeout, NotFound, TooManyRequests, Unavailable, VenvserveError,
                      WorkerCrashed)
from ..settings import Settings
from . import budget as budgeting
from . import gpu
from .client import WorkerClient, WorkerGone
from .process import BootError, LaunchSpec, WorkerProcess, describe_exit
from .runtime_path import runtime_path
from .state import LIVE, ROUTABLE, WorkerState, advance

log = logging.getLogger("venvserve.supervisor")

BOOT_ATTEMPTS = 3  # a model that cannot boot this many times in a row is marked failed
BOOT_BACKOFF_S = 0.5  # doubled after each failed boot
CRASH_WINDOW_S = 60.0
CRASHES_TO_FAIL = 5  # crashes within the window that mark a model failed
QUEUE_POLL_S = 0.25  # how often a queued request checks that its client is still there


@dataclass(eq=False)
class Worker:
    id: int
    model: str
    process: WorkerProcess
    python: str
    env: str | None
    venv: Path | None
    client: WorkerClient | None = None
    state: WorkerState = WorkerState.STARTING
    in_flight: int = 0
    served: int = 0
    started_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    health_failures: int = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid


@dataclass(eq=False)
class ModelRuntime:
    spec: ModelSpec
    workers: list[Worker] = field(default_factory=list)
    spawning: int = 0
    reserved: int = 0  # spawns that passed the budget check and have no worker yet
    waiting: int = 0
    activity: str = "idle"  # idle | building env | loading | ready | failed
    failed_reason: str | None = None
    boot_failures: int = 0
    spawns: int = 0
    crashes: collections.deque = field(default_factory=lambda: collections.deque(maxlen=32))
    last_error: tuple[float, VenvserveError] | None = None
    last_used: float = field(default_factory=time.monotonic)

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.state in LIVE]


class Supervisor:
    # What the hooks hear: hook(event, model=..., **fields).
    EVENTS = ("spawned", "crashed", "failed", "evicted", "request")

    def __init__(self, settings: Settings, catalog: Catalog, envs: EnvManager, run_dir: Path):
        self.settings = settings
        self.catalog = catalog
        self.envs = envs
        self.run_dir = run_dir
        self.runtime = runtime_path(settings.data_dir)
        self.models: dict[str, ModelRuntime] = {}
        self.changed = asyncio.Condition()  # any worker/budget change: waiters re-check
        self.draining = False
        self.ids = itertools.count(1)
        self.tasks: set[asyncio.Task] = set()
        self.measured_path = settings.data_dir / "measured.json"
        self.measured = self._load_measured()
        self.hooks: list = []  # callables(event: str, **fields) for metrics
        gpu_budget = settings.gpu_memory_budget_mb
        if gpu_budget < 0:
            gpu_budget = gpu.total_memory_mb()
        self.budget = budgeting.Budget(settings.max_loaded_models, settings.memory_budget_mb, gpu_budget)

    # -- public intents ----------------------------------------------------

    async def start(self) -> None:
        self._spawn_task(self._housekeeping())

    async def infer(self, model_id: str, payload: dict, timeout: float | None = None,
                    disconnected: Callable[[], Awaitable[bool]] | None = None) -> dict:
        """Run one request on a worker of the model, spawning one if needed.

        ``disconnected`` is polled while the request waits in the queue: a
        client that has gone away leaves the queue instead of taking a worker.
        """
        rt = self._runtime(model_id)
        t0 = time.perf_counter()
        worker = await self._acquire(rt, disconnected)
        t1 = time.perf_counter()
        timeout = timeout or self.settings.request_timeout_s
        try:
            return await worker.client.call("POST", "/infer", payload, timeout)
        except WorkerGone as exc:
            raise await self._crash_error(worker, exc) from None
        except GatewayTimeout:
            log.warning("model %s: request timed out after %.0fs on pid %s; replacing the worker",
                        model_id, timeout, worker.pid)
            self._spawn_task(self._stop_worker(worker, drain=False))
            raise
        finally:
            self._release(worker)
            self._emit("request", model=model_id, queue_s=t1 - t0, infer_s=time.perf_counter() - t1)

    async def load(self, model_id: str) -> list[Worker]:
        """Start the model's workers (all replicas) and wait until they are ready."""
        rt = self._runtime(model_id, reset_failed=True)
        while len(rt.live()) + rt.spawning < rt.spec.replicas:
            self._start_spawn(rt)
        started = time.monotonic()
        async with self.changed:
            while True:
                ready = [w for w in rt.workers if w.state in ROUTABLE]
                if len(ready) >= rt.spec.replicas:
                    return ready
                self._raise_if_stuck(rt, started)
                left = started + self.settings.load_timeout_s - time.monotonic()
                if left <= 0:
                    raise GatewayTimeout(f"model {model_id!r} was not ready within "
                                         f"{self.settings.load_timeout_s:.0f}s", code="load_timeout")
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except asyncio.TimeoutError:
                    pass

    async def unload(self, model_id: str) -> int:
        """Stop the model's workers once their in-flight requests finish."""
        rt = self._runtime(model_id)
        workers = rt.live()
        await asyncio.gather(*(self._stop_worker(w, drain=True) for w in workers))
        return len(workers)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let in-flight requests finish within ``grace``, stop all."""
        self.draining = True
        deadline = time.monotonic() + grace
        async with self.changed:
            self.changed.notify_all()
            while any(w.in_flight for rt in self.models.values() for w in rt.workers):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except asyncio.TimeoutError:
                    break
        workers = [w for rt in self.models.values() for w in rt.live()]
        await asyncio.gather(*(self._stop_worker(w, drain=False) for w in workers))
        for task in list(self.tasks):
            task.cancel()

    # -- routing -----------------------------------------------------------

    def _runtime(self, model_id: str, reset_failed: bool = False) -> ModelRuntime:
        spec = self.catalog.get(model_id)
        if spec is None:
            raise NotFound(f"unknown model {model_id!r}", code="model_not_found",
                           hint="GET /v1/models lists the models of this server")
        ok, reason = availability.check(spec, self.envs)
        if not ok:
            raise Unavailable(f"model {model_id!r} is not available: {reason}", code="model_unavailable")
        rt = self.models.setdefault(model_id, ModelRuntime(spec))
        if reset_failed and rt.failed_reason:
            rt.failed_reason, rt.boot_failures, rt.activity = None, 0, "idle"
            rt.crashes.clear()
        return rt

    def _free_worker(self, rt: ModelRuntime) -> Worker | None:
        free = [w for w in rt.workers
                if w.state in ROUTABLE and w.in_flight < rt.spec.max_concurrency]
        return min(free, key=lambda w: (w.in_flight, w.last_used)) if free else None

    async def _acquire(self, rt: ModelRuntime, disconnected=None) -> Worker:
        if self.draining:
            raise Unavailable("the server is shutting down", code="shutting_down")
        if rt.failed_reason:
            raise Unavailable(f"model {rt.spec.id!r} failed: {rt.failed_reason}", code="model_failed",
                              hint=f"fix the cause, then POST /v1/models/{rt.spec.id}/load to try again")
        worker = self._free_worker(rt)
        if worker is None:
            limit = rt.spec.max_queue if rt.spec.max_queue is not None else self.settings.max_queue
            if rt.waiting >= limit:
                raise TooManyRequests(f"model {rt.spec.id!r} has {rt.waiting} requests queued (limit {limit})",
                                      headers={"Retry-After": "1"}, hint="retry after a second")
            rt.waiting += 1
            try:
                worker = await self._wait_for_worker(rt, disconnected)
            finally:
                rt.waiting -= 1
        worker.in_flight += 1
        worker.state = advance(worker.state, WorkerState.BUSY)
        rt.last_used = worker.last_used = time.monotonic()
        return worker

    async def _wait_for_worker(self, rt: ModelRuntime, disconnected=None) -> Worker:
        started = time.monotonic()
        deadline = started + self.settings.queue_timeout_s
        async with self.changed:
            while True:
                worker = self._free_worker(rt)
                if worker:
                    return worker
                if self.draining:
                    raise Unavailable("the server is shutting down", code="shutting_down")
                self._raise_if_stuck(rt, started)
                if len(rt.live()) + rt.spawning < rt.spec.replicas:
                    self._start_spawn(rt)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GatewayTimeout(f"no worker of {rt.spec.id!r} was free within "
                                         f"{self.settings.queue_timeout_s:.0f}s", code="queue_timeout")
                try:
                    await asyncio.wait_for(self.changed.wait(), min(left, QUEUE_POLL_S) if disconnected else left)
                except asyncio.TimeoutError:
                    if disconnected and await disconnected():
                        raise ClientGone(f"the client left while queued for {rt.spec.id!r}")

    def _raise_if_stuck(self, rt: ModelRuntime, since: float) -> None:
        if rt.failed_reason:
            raise Unavailable(f"model {rt.spec.id!r} failed: {rt.failed_reason}", code="model_failed",
                              hint=f"fix the cause, then POST /v1/models/{rt.spec.id}/load to try again")
        if rt.last_error and rt.last_error[0] >= since and not rt.live() and not rt.spawning:
            raise rt.last_error[1]

    def _release(self, worker: Worker) -> None:
        worker.in_flight -= 1
        worker.served += 1
        worker.last_used = time.monotonic()
        if worker.in_flight == 0 and worker.state is WorkerState.BUSY:
            worker.state = advance(worker.state, WorkerState.READY)
        self._notify()

    def _notify(self) -> None:
        async def notify():
            async with self.changed:
                self.changed.notify_all()
        self._spawn_task(notify())

    def _spawn_task(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- spawning ----------------------------------------------------------

    def _start_spawn(self, rt: ModelRuntime) -> None:
        rt.spawning += 1
        self._spawn_task(self._spawn(rt))

    async def _spawn(self, rt: ModelRuntime) -> None:
        try:
            while not self.draining:
                try:
                    python, venv = await self._interpreter(rt)
                    rt.activity = "waiting for memory"
                    await self._make_room(rt)
                    rt.activity = "loading"
                    worker = await self._launch(rt, python, venv)
                except BootError as exc:
                    rt.activity = "idle"
                    if await self._boot_failed(rt, exc):
                        continue
                    return
                except VenvserveError as exc:
                    rt.last_error = (time.monotonic(), exc)
                    rt.activity = "idle"
                    return
                rt.boot_failures = 0
                rt.activity = "ready"
                self._spawn_task(self._watch(rt, worker))
                if self.draining:  # shutdown began while it was loading
                    await self._stop_worker(worker, drain=False)
                return
        finally:
            rt.spawning -= 1
            async with self.changed:
                self.changed.notify_all()

    async def _interpreter(self, rt: ModelRuntime) -> tuple[str, Path | None]:
        spec = rt.spec
        if spec.python:
            return spec.python, None
        if spec.python_env:
            status = self.envs.status(spec.python_env)
            if status.state.value not in ("ready", "external"):
                rt.activity = "building env"
                log.info("model %s: building env %s", spec.id, spec.python_env)
            status = await self.envs.ensure(spec.python_env)
            return str(status.python), status.path
        return sys.executable, None

    async def _launch(self, rt: ModelRuntime, python: str, venv: Path | None) -> Worker:
        spec = rt.spec
        wid = next(self.ids)
        transport_unix = self.settings.worker_transport == "unix"
        launch = LaunchSpec(
            model=spec.id, architecture=spec.architecture, python=python, options=spec.options,
            max_concurrency=spec.max_concurrency, runtime_path=self.runtime,
            env=self._worker_env(spec), socket=self.run_dir / f"w{wid}.sock" if transport_unix else None,
            input_dir=self.settings.data_dir / "spool")
        process = WorkerProcess(launch)
        worker = Worker(wid, spec.id, process, python, spec.python_env, venv)
        rt.workers.append(worker)
        rt.reserved -= 1  # the worker itself now counts against the budget
        rt.spawns += 1
        log.info("model %s: loading model (worker %d, %s)", spec.id, wid, python)
        t0 = time.monotonic()
        try:
            await process.start(self.settings.load_timeout_s)
        except BootError:
            worker.state = advance(worker.state, WorkerState.FAILED)
            rt.workers.remove(worker)
            raise
        worker.client = WorkerClient(str(launch.socket) if launch.socket else None, process.port,
                                     process.token, pool_size=spec.max_concurrency + 2)
        worker.state = advance(worker.state, WorkerState.READY)
        worker.last_used = time.monotonic()
        self._emit("spawned", model=spec.id, seconds=time.monotonic() - t0)
        log.info("model %s: worker %d ready in %.2fs (pid %d, model load %.0f ms)", spec.id, wid,
                 time.monotonic() - t0, process.pid, process.info.get("load_ms") or 0)
        self._remember_memory(spec.id, process)
        return worker

    def _worker_env(self, spec: ModelSpec) -> dict:
        return {"VENVSERVE_DATA_DIR": str(self.settings.data_dir), **availability.cache_env(self.settings.data_dir)}

    async def _boot_failed(self, rt: ModelRuntime, exc: BootError) -> bool:
        """Record a failed boot; True to retry after the backoff, False when marked failed."""
        rt.boot_failures += 1
        tail = " | ".join(line for line in exc.stderr[-6:] if line.strip())
        reason = f"{exc} ({describe_exit(exc.returncode)}): {tail}" if tail else str(exc)
        log.error("model %s: boot %d of %d failed: %s", rt.spec.id, rt.boot_failures, BOOT_ATTEMPTS, reason)
        if rt.boot_failures >= BOOT_ATTEMPTS:
            rt.failed_reason = reason
            rt.activity = "failed"
            self._emit("failed", model=rt.spec.id)
            return False
        rt.activity = "backing off"
        await asyncio.sleep(BOOT_BACKOFF_S * 2 ** (rt.boot_failures - 1))
        return True

    async def _watch(self, rt: ModelRuntime, worker: Worker) -> None:
        """Wait for the worker process to exit; a crash is any exit we did not ask for."""
        code = await worker.process.wait()
        if worker.state is not WorkerState.DRAINING:
            worker.state = advance(worker.state, WorkerState.CRASHED)
            now = time.monotonic()
            rt.crashes.append(now)
            log.error("model %s: worker %d (pid %s) %s; last output: %s", rt.spec.id, worker.id,
                      worker.pid, describe_exit(code), " | ".join(worker.process.stderr_tail(5)))
            self._emit("crashed", model=rt.spec.id)
            recent = [t for t in rt.crashes if now - t < CRASH_WINDOW_S]
            if len(recent) >= CRASHES_TO_FAIL:
                rt.failed_reason = (f"its worker crashed {len(recent)} times within "
                                    f"{CRASH_WINDOW_S:.0f}s; last: {describe_exit(code)}")
                rt.activity = "failed"
        else:
            worker.state = advance(worker.state, WorkerState.STOPPED)
        if worker in rt.workers:
            rt.workers.remove(worker)
        if worker.client:
            await worker.client.close()
        if not rt.live() and rt.activity == "ready":
            rt.activity = "idle"
        async with self.changed:
            self.changed.notify_all()

    async def _crash_error(self, worker: Worker, exc: WorkerGone) -> VenvserveError:
        try:  # the process is usually gone within milliseconds of the broken pipe
            code = await asyncio.wait_for(asyncio.shield(worker.process.proc.wait()), 1.0)
        except asyncio.TimeoutError:
            code = None
        await worker.process._drain_output()
        tail = worker.process.stderr_tail(10)
        what = describe_exit(code) if code is not None else f"broke the connection ({exc})"
        return WorkerCrashed(f"the worker of {worker.model!r} (pid {worker.pid}) {what} while "
                             f"handling this request; last output: " + " | ".join(tail),
                             hint="the next request starts a new worker")

    async def _stop_worker(self, worker: Worker, drain: bool) -> None:
        if worker.state not in LIVE or worker.state is WorkerState.DRAINING:
            return
        if worker.state is WorkerState.STARTING:
            return  # the spawn will see draining and stop it
        worker.state = advance(worker.state, WorkerState.DRAINING)
        if drain:
            async with self.changed:
                await self.changed.wait_for(lambda: worker.in_flight == 0)
        log.info("model %s: stopping worker %d (pid %s)", worker.model, worker.id, worker.pid)
        since = time.monotonic()
        await worker.process.stop(self.settings.stop_grace_s)
        await self._wait_gpu_release(worker, since)

    # -- memory budget -----------------------------------------------------

    def _estimate(self, spec: ModelSpec) -> tuple[float, float]:
        seen = self.measured.get(spec.id, {})
        return (seen.get("rss_mb") or spec.memory_mb,
                seen.get("gpu_mb") or spec.gpu_memory_mb if spec.device == "cuda" else 0)

    def _residents(self) -> list[budgeting.Resident]:
        residents = []
        for rt in self.models.values():
            mem, gpu_mb = self._estimate(rt.spec)
            for w in rt.workers:
                if w.state in LIVE:
                    residents.append(budgeting.Resident(
                        model=rt.spec.id, memory_mb=mem, gpu_memory_mb=gpu_mb,
                        evictable=(w.state is WorkerState.READY and w.in_flight == 0 and rt.waiting == 0),
                        last_used=w.last_used, on_gpu=rt.spec.device == "cuda"))
            residents += [budgeting.Resident(rt.spec.id, mem, gpu_mb, False, time.monotonic(),
                                             rt.spec.device == "cuda")] * rt.reserved
        return residents

    async def _make_room(self, rt: ModelRuntime) -> None:
        """Evict idle workers (LRU) until the model fits; wait, bounded, while it cannot."""
        mem, gpu_mb = self._estimate(rt.spec)
        deadline = time.monotonic() + self.settings.queue_timeout_s
        async with self.changed:
            while True:
                # This spawn's own placeholder is not a worker yet: count it as the new model.
                residents = self._residents()
                chosen = budgeting.victims(self.budget, residents, rt.spec.id, mem, gpu_mb)
                if chosen == []:
                    rt.reserved += 1
                    return
                if chosen:
                    victims = self._pick_workers(chosen)
                    for w in victims:
                        log.info("budget: evicting %s (worker %d, idle) to make room for %s",
                                 w.model, w.id, rt.spec.id)
                        self._emit("evicted", model=w.model)
                    self.changed.release()
                    try:
                        await asyncio.gather(*(self._stop_worker(w, drain=True) for w in victims))
                    finally:
                        await self.changed.acquire()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable(f"no room for {rt.spec.id!r} within the memory budget "
                                      f"after {self.settings.queue_timeout_s:.0f}s", code="no_capacity",
                                      hint="raise the budget, or lower max_loaded_models elsewhere")
                try:
                    await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
                except asyncio.TimeoutError:
                    pass

    def _pick_workers(self, chosen: list[budgeting.Resident]) -> list[Worker]:
        picked = []
        for resident in chosen:
            rt = self.models[resident.model]
            for w in sorted(rt.workers, key=lambda w: w.last_used):
                if w.state is WorkerState.READY and w.in_flight == 0 and w not in picked:
                    picked.append(w)
                    break
        return picked

    async def _wait_gpu_release(self, worker: Worker, since: float) -> None:
        """After a GPU worker exits, wait until the driver no longer lists its pid."""
        spec = self.catalog.get(worker.model)
        if not spec or spec.device != "cuda" or not gpu.available():
            return
        deadline = time.monotonic() + 30
        while worker.pid in await asyncio.to_thread(gpu.process_memory_mb) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        log.info("model %s: worker %d's GPU memory freed in %.3fs", worker.model, worker.id,
                 time.monotonic() - since)

    def _remember_memory(self, model_id: str, process: WorkerProcess) -> None:
        rss = process.rss_mb()
        gpu_mb = gpu.process_memory_mb().get(process.pid) if gpu.available() else None
        entry = self.measured.setdefault(model_id, {})
        if rss:
            entry["rss_mb"] = max(rss, entry.get("rss_mb", 0) if entry.get("pid") == process.pid else 0)
        if gpu_mb:
            entry["gpu_mb"] = gpu_mb
        entry["pid"] = process.pid
        try:
            tmp = self.measured_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.measured, indent=1))
            os.replace(tmp, self.measured_path)
        except OSError:
            pass

    def _load_measured(self) -> dict:
        try:
            return json.loads(self.measured_path.read_text())
        except (OSError, ValueError):
            return {}

    # -- housekeeping ------------------------------------------------------

    async def _housekeeping(self) -> None:
        """Once a second: unload idle models; every health_interval_s: health checks."""
        last_health = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for rt in self.models.values():
                timeout = rt.spec.idle_timeout_s
                if timeout is None:
                    timeout = self.settings.idle_timeout_s
                for w in list(rt.workers):
                    if (timeout and w.state is WorkerState.READY and w.in_flight == 0
                            and rt.waiting == 0 and now - w.last_used > timeout):
                        log.info("model %s: worker %d idle for %.0fs: unloading", rt.spec.id, w.id,
                                 now - w.last_used)
                        self._spawn_task(self._stop_worker(w, drain=True))
                    elif w.state in ROUTABLE:
                        self._remember_memory(rt.spec.id, w.process)
            if now - last_health > self.settings.health_interval_s:
                last_health = now
                for rt in self.models.values():
                    for w in rt.workers:
                        if w.state in ROUTABLE:
                            self._spawn_task(self._health_check(w))

    async def _health_check(self, worker: Worker) -> None:
        try:
            await worker.client.call("GET", "/healthz", timeout=self.settings.health_timeout_s)
            worker.health_failures = 0
        except (WorkerGone, VenvserveError):
            worker.health_failures += 1
            if worker.health_failures >= 2 and worker.state in ROUTABLE:
                log.error("model %s: worker %d (pid %s) stopped answering /healthz: replacing it",
                          worker.model, worker.id, worker.pid)
                await self._stop_worker(worker, drain=False)

    def _emit(self, event: str, **fields) -> None:
        for hook in self.hooks:
            hook(event, **fields)

    # -- views -------------------------------------------------------------

    def worker_views(self) -> list[dict]:
        now = time.monotonic()
        return [{
            "id": w.id, "model": w.model, "pid": w.pid, "env": w.env, "python": w.python,
            "address": str(w.process.spec.socket) if w.process.spec.socket else f"127.0.0.1:{w.process.port}",
            "state": w.state.value, "started_at": w.started_at,
            "idle_s": round(now - w.last_used, 1) if w.in_flight == 0 else 0.0,
            "in_flight": w.in_flight, "requests": w.served, "rss_mb": w.process.rss_mb(),
            "gpu_mb": gpu.process_memory_mb().get(w.pid) if gpu.available() else None,
            "ready_ms": w.process.ready_ms, "load_ms": w.process.info.get("load_ms"),
        } for rt in self.models.values() for w in rt.workers if w.state in LIVE]

    def model_state(self, model_id: str) -> dict:
        rt = self.models.get(model_id)
        if rt is None:
            return {"state": "unloaded", "activity": "idle", "workers": 0, "queued": 0}
        live = rt.live()
        if rt.failed_reason:
            state = "failed"
        elif any(w.state in ROUTABLE for w in live):
            state = "loaded"
        elif live or rt.spawning:
            state = "loading"
        else:
            state = "unloaded"
        return {"state": state, "activity": rt.activity, "workers": len(live), "queued": rt.waiting,
                "spawns": rt.spawns, "failed_reason": rt.failed_reason}

    def budget_view(self) -> dict:
        residents = self._residents()
        return {
            "max_loaded_models": self.budget.max_loaded_models,
            "loaded_models": len({r.model for r in residents}),
            "memory_budget_mb": self.budget.memory_mb,
            "memory_used_mb": round(sum(r.memory_mb for r in residents), 1),
            "gpu_memory_budget_mb": self.budget.gpu_memory_mb,
            "gpu_memory_used_mb": round(sum(r.gpu_memory_mb for r in residents), 1),
        }

    def in_use(self) -> set[Path]:
        return {w.venv for rt in self.models.values() for w in rt.workers
                if w.venv is not None and w.state in LIVE}
