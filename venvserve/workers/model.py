"""One actor per model: the only writer of that model's state.

Lifecycle intents (ensure workers, unload, stop a worker) and what the
actor's own tasks report (a worker launched, booted, failed to boot, exited)
are queued to one mailbox and applied one at a time by the actor's runner,
so no two of them interleave. Requests take and give back workers
synchronously on the event loop (``acquire``/``release``: no await between
reading and writing), and queue in the model's Router when none is free.

A stop during a start aborts the start: unloading cancels the boot tasks,
and a cancelled boot kills the process it was starting.
"""

import asyncio
import collections
import itertools
import logging
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from ..catalog import ModelSpec
from ..errors import Conflict, GatewayTimeout, Unavailable, VenvserveError
from . import events
from .boot import Boot
from .process import BootError, describe_exit
from .routing import Router
from .state import LIVE, ROUTABLE, Activity, WorkerState, advance
from .worker import Mailbox, Signal, Worker

if TYPE_CHECKING:
    from .supervisor import Supervisor

log = logging.getLogger("venvserve.supervisor")

BOOT_ATTEMPTS = 3  # boots that crash or time out this many times in a row mark the model failed
BOOT_BACKOFF_S = 0.5  # doubled after each failed boot
CRASH_WINDOW_S = 60.0
CRASHES_TO_FAIL = 5  # crashes within the window that mark a model failed


class ModelActor:
    def __init__(self, spec: ModelSpec, host: "Supervisor"):
        self.spec = spec
        self.host = host
        self.workers: list[Worker] = []
        self.booting: dict[int, asyncio.Task] = {}  # boot id → the task starting a worker
        self.reservations: set[int] = set()  # boots that passed the budget check and have no worker yet
        self.activity = Activity.IDLE
        self.failed_reason: str | None = None
        self.boot_failures = 0
        self.spawns = 0
        self.unloads = 0
        self.crashes: collections.deque[float] = collections.deque(maxlen=32)
        self.last_error: tuple[float, VenvserveError] | None = None
        self.last_used = time.monotonic()
        limit = spec.max_queue if spec.max_queue is not None else host.settings.max_queue
        self.router = Router(spec.id, spec.max_concurrency, limit, self.workers, self._take)
        self.changed = Signal()
        self._boot_ids = itertools.count(1)
        self._mailbox = Mailbox(f"model {spec.id}")
        self._runner = host.spawn(self._mailbox.run())

    # -- reading ----------------------------------------------------------------

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.state in LIVE]

    def routable(self) -> list[Worker]:
        return [w for w in self.workers if w.state in ROUTABLE]

    @property
    def reserved(self) -> int:
        return len(self.reservations)

    def _unable(self) -> Unavailable:
        return Unavailable(f"model {self.spec.id!r} failed: {self.failed_reason}", code="model_failed",
                           hint=f"GET /v1/models/{self.spec.id}/logs shows its output; fix the cause, "
                                f"then POST /v1/models/{self.spec.id}/load to try again")

    def _post(self, handler: Callable, *args) -> asyncio.Future:
        """Queue an intent for the runner; the future holds what its handler returned."""
        return self._mailbox.post(handler, *args)

    # -- intents ------------------------------------------------------------------

    async def load(self, timeout: float) -> list[Worker]:
        """Start every replica and wait until all are ready."""
        if self.host.draining:
            raise Unavailable("the server is shutting down", code="shutting_down")
        unloads, since = self.unloads, time.monotonic()
        await self._post(self._on_ensure, True)
        deadline = since + timeout
        while True:
            ready = self.routable()
            if len(ready) >= self.spec.replicas:
                return ready
            if self.failed_reason:
                raise self._unable()
            if self.unloads != unloads:
                raise Conflict(f"model {self.spec.id!r} was unloaded while it loaded", code="load_cancelled")
            if self.last_error and self.last_error[0] >= since and not self.booting and not ready:
                raise self.last_error[1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise GatewayTimeout(f"model {self.spec.id!r} was not ready within {timeout:.0f}s",
                                     code="load_timeout")
            await self.changed.wait(min(left, 1.0))

    async def unload(self) -> int:
        """Abort starts, stop workers after their in-flight requests; the number stopped."""
        stops, count = await self._post(self._on_unload)
        await asyncio.gather(*stops, return_exceptions=True)
        await self._post(lambda: None)  # what the stopped boots and workers reported is applied
        return count

    async def stop(self, worker: Worker, drain: bool, only_if_idle: bool = False) -> bool:
        """Stop one worker (eviction, idle unload, a hung or silent worker); False if it was not stopped."""
        task = await self._post(self._on_stop, worker, drain, only_if_idle)
        if task is None:
            return False
        await asyncio.shield(task)
        return True

    def _on_ensure(self, reset: bool) -> None:
        if reset and self.failed_reason:
            self.failed_reason, self.boot_failures, self.activity = None, 0, Activity.IDLE
            self.crashes.clear()
        if self.failed_reason or self.host.draining:
            return
        while len(self.routable()) + len(self.booting) < self.spec.replicas:
            self._start_boot(0.0)

    def _on_unload(self) -> tuple[list, int]:
        self.unloads += 1
        self.router.fail_all(Unavailable(f"model {self.spec.id!r} was unloaded", code="model_unloaded"))
        count = sum(1 for w in self.workers if w.state in (WorkerState.STARTING, *ROUTABLE))
        stops = list(self.booting.values())
        for task in stops:
            task.cancel()  # a stop during a start aborts the start
        self.booting.clear()
        stops += [t for t in (self._on_stop(w, True) for w in self.routable()) if t]
        self._settle_activity()
        self.changed.notify()
        return stops, count

    def _on_stop(self, worker: Worker, drain: bool, only_if_idle: bool = False) -> asyncio.Task | None:
        if worker.state not in ROUTABLE:
            return None
        if only_if_idle and (worker.calls or self.router.queued):
            return None  # a request took it since the decision
        worker.state = advance(worker.state, WorkerState.DRAINING)
        self._settle_activity()
        return self.host.spawn(self._stop_process(worker, drain))

    async def _stop_process(self, worker: Worker, drain: bool) -> None:
        while drain and worker.calls:
            await self.changed.wait(1.0)
        log.info("model %s: stopping worker %d (pid %s)", self.spec.id, worker.id, worker.pid)
        since = time.monotonic()
        await worker.process.stop(self.host.settings.stop_grace_s)
        if self.host.placement.on_gpu(self.spec):
            await self.host.housekeeping.wait_gpu_release(worker, since)

    # -- requests -------------------------------------------------------------------

    async def acquire(self, disconnected: Callable[[], Awaitable[bool]] | None = None) -> Worker:
        if self.host.draining:
            raise Unavailable("the server is shutting down", code="shutting_down")
        if self.failed_reason:
            raise self._unable()
        worker = self.router.take_now(asyncio.current_task())
        if worker is not None:
            return worker
        self.router.admit()
        if len(self.routable()) + len(self.booting) < self.spec.replicas:
            self._post(self._on_ensure, False)
        return await self.router.wait(self.host.settings.queue_timeout_s, disconnected, self.release)

    def _take(self, worker: Worker, task: asyncio.Task | None) -> None:
        worker.calls.add(task)
        worker.state = advance(worker.state, WorkerState.BUSY)
        self.last_used = worker.last_used = time.monotonic()

    def release(self, worker: Worker, task: asyncio.Task | None) -> None:
        worker.calls.discard(task)
        worker.served += 1
        self.last_used = worker.last_used = time.monotonic()
        if not worker.calls and worker.state is WorkerState.BUSY:
            worker.state = advance(worker.state, WorkerState.READY)
        self.router.serve()
        self.changed.notify()
        self.host.placement.changed.notify()

    # -- booting ------------------------------------------------------------------

    def _start_boot(self, delay: float) -> None:
        bid = next(self._boot_ids)
        self.booting[bid] = self.host.spawn(Boot(self, bid, delay).run())

    def reserve(self, bid: int) -> None:
        """Called by placement once the model fits: the room is held until the worker exists."""
        self.reservations.add(bid)

    def progress(self, bid: int, activity: Activity) -> None:
        if bid in self.booting:
            self.activity = activity

    def _on_launching(self, bid: int, worker: Worker) -> None:
        self.reservations.discard(bid)
        self.workers.append(worker)  # the worker itself counts against the budget from now on
        self.spawns += 1
        if bid in self.booting:
            self.activity = Activity.LOADING

    def _on_booted(self, bid: int, worker: Worker, seconds: float) -> None:
        self.host.spawn(self._watch(worker))
        if self.booting.pop(bid, None) is None or self.host.draining:
            worker.state = advance(worker.state, WorkerState.DRAINING)  # unloaded while it loaded
            self.host.spawn(self._stop_process(worker, False))
            return
        worker.state = advance(worker.state, WorkerState.READY)
        worker.ready_at = worker.last_used = time.monotonic()
        self.boot_failures = 0
        self.activity = Activity.READY
        self.host.emit(events.Spawned(self.spec.id, worker.pid, seconds))
        log.info("model %s: worker %d ready in %.2fs (pid %d, model load %.0f ms)", self.spec.id, worker.id,
                 seconds, worker.pid, worker.process.info.get("load_ms") or 0)
        self.host.housekeeping.kick()
        self.router.serve()
        self._notify()

    def _on_boot_ended(self, bid: int, worker: Worker | None, exc: BaseException | None) -> None:
        """A boot that did not produce a worker: aborted (exc None), failed to boot, or could not start."""
        self.reservations.discard(bid)
        current = self.booting.pop(bid, None) is not None
        if worker is not None and worker in self.workers:
            end = WorkerState.FAILED if isinstance(exc, BootError) else WorkerState.DRAINING
            worker.state = advance(worker.state, end)
            self.workers.remove(worker)
        if current and isinstance(exc, BootError):
            self._boot_failed(exc)
        elif current and isinstance(exc, VenvserveError):
            self.last_error = (time.monotonic(), exc)
            if not self.routable() and not self.booting:
                self.router.fail_all(exc)
        self._settle_activity()
        self._notify()

    def _boot_failed(self, exc: BootError) -> None:
        reason = exc.reason
        self.boot_failures += 1
        log.error("model %s: boot %d failed (%s): %s", self.spec.id, self.boot_failures,
                  describe_exit(exc.returncode) if exc.returncode is not None else exc, reason)
        if exc.permanent:
            self._mark_failed(reason)  # it would fail the same way again: once is enough
        elif self.boot_failures >= BOOT_ATTEMPTS:
            self._mark_failed(f"{exc} ({reason})" if reason and reason not in str(exc) else str(exc))
        elif not self.host.draining:
            self._start_boot(BOOT_BACKOFF_S * 2 ** (self.boot_failures - 1))

    def _mark_failed(self, reason: str) -> None:
        self.failed_reason = reason
        self.activity = Activity.FAILED
        self.host.emit(events.Failed(self.spec.id, reason))
        self.router.fail_all(self._unable())

    # -- exits ------------------------------------------------------------------------

    async def _watch(self, worker: Worker) -> None:
        code = await worker.process.wait()
        self._post(self._on_exited, worker, code)

    def _on_exited(self, worker: Worker, code: int) -> None:
        if worker.state is WorkerState.DRAINING:
            worker.state = advance(worker.state, WorkerState.STOPPED)
        elif worker.state in ROUTABLE:
            worker.state = advance(worker.state, WorkerState.CRASHED)
            self._crashed(worker, code)
        if worker in self.workers:
            self.workers.remove(worker)
        if worker.client:
            self.host.spawn(worker.client.close())
        if self.router.queued and not self.failed_reason:
            self._on_ensure(False)  # queued requests need a worker: start one
        self._settle_activity()
        self._notify()

    def _crashed(self, worker: Worker, code: int) -> None:
        now = time.monotonic()
        self.crashes.append(now)
        what = describe_exit(code)
        tail = " | ".join(worker.process.tail(5))
        log.error("model %s: worker %d (pid %s) %s%s", self.spec.id, worker.id, worker.pid, what,
                  f"; last output: {tail}" if tail else "")
        self.host.emit(events.Crashed(self.spec.id, worker.pid, what))
        recent = [t for t in self.crashes if now - t < CRASH_WINDOW_S]
        if len(recent) >= CRASHES_TO_FAIL:
            self._mark_failed(f"its worker crashed {len(recent)} times within {CRASH_WINDOW_S:.0f}s; "
                              f"last: {what}")

    def _settle_activity(self) -> None:
        if self.activity is Activity.FAILED:
            return
        if any(w.state is WorkerState.DRAINING for w in self.workers) and not self.routable():
            self.activity = Activity.STOPPING
        elif self.routable():
            self.activity = Activity.READY
        elif not self.booting:
            self.activity = Activity.IDLE

    def _notify(self) -> None:
        self.changed.notify()
        self.host.placement.changed.notify()
