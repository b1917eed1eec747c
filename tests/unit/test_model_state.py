"""A model's actor and the worker state table, with scripted boots instead of processes:
a stop during a start aborts it, boot errors fail once, crashes back off, queued requests
are handed workers in order and failed together."""

import asyncio
import itertools
from types import SimpleNamespace

import pytest

from venvserve.catalog import ModelSpec
from venvserve.errors import Conflict, TooManyRequests, Unavailable
from venvserve.settings import Settings
from venvserve.workers import events, model
from venvserve.workers.process import BootError
from venvserve.workers.state import TRANSITIONS, Activity, InvalidTransition, WorkerState, advance
from venvserve.workers.worker import Signal, Worker

from venvserve_worker import protocol

PIDS = itertools.count(1000)


def test_the_transition_table_allows_only_its_edges():
    assert advance(WorkerState.STARTING, WorkerState.READY) is WorkerState.READY
    assert advance(WorkerState.READY, WorkerState.READY) is WorkerState.READY
    with pytest.raises(InvalidTransition):
        advance(WorkerState.STOPPED, WorkerState.READY)
    with pytest.raises(InvalidTransition):
        advance(WorkerState.DRAINING, WorkerState.READY)  # a stopping worker is never routed to again
    for end in (WorkerState.STOPPED, WorkerState.CRASHED, WorkerState.FAILED):
        assert TRANSITIONS[end] == set()


def test_every_activity_has_one_documented_value():
    assert len({a.value for a in Activity}) == len(Activity)
    assert Activity("waiting for memory") is Activity.WAITING_FOR_MEMORY


class FakeProcess:
    def __init__(self):
        self.pid = next(PIDS)
        self.exited = asyncio.get_running_loop().create_future()
        self.info, self.ready_ms, self.port = {}, 1.0, None
        self.spec = SimpleNamespace(socket=None)
        self.output = SimpleNamespace(note=lambda text: None)
        self.killed = False

    async def wait(self) -> int:
        return await asyncio.shield(self.exited)

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    def exit(self, code: int) -> None:
        if not self.exited.done():
            self.exited.set_result(code)

    async def stop(self, grace: float) -> int:
        self.exit(0)
        return 0

    def tail(self, n: int = 15) -> list[str]:
        return []


class Script:
    """What each boot does, in order: "ok", "hold" (until released), or an exception to end with."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.release = asyncio.Event()
        self.booted: list[Worker] = []
        self.aborted: list[Worker] = []

    def boot_class(self):
        script = self

        class ScriptedBoot:
            def __init__(self, actor, bid, delay):
                self.actor, self.bid, self.delay = actor, bid, delay

            async def run(self):
                actor, bid = self.actor, self.bid
                step = script.steps.pop(0) if script.steps else "ok"
                await asyncio.sleep(self.delay)
                worker = Worker(bid, actor.spec.id, FakeProcess(), "python", None, None)
                actor._post(actor._on_launching, bid, worker)
                try:
                    if step == "hold":
                        await script.release.wait()
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    worker.process.killed = True
                    worker.process.exit(-9)
                    script.aborted.append(worker)
                    actor._post(actor._on_boot_ended, bid, worker, None)
                    raise
                if isinstance(step, Exception):
                    worker.process.exit(getattr(step, "returncode", 1) or 1)
                    actor._post(actor._on_boot_ended, bid, worker, step)
                    return
                worker.client = SimpleNamespace(close=lambda: asyncio.sleep(0))
                script.booted.append(worker)
                actor._post(actor._on_booted, bid, worker, 0.01)

        return ScriptedBoot


class FakeHost:
    def __init__(self, **settings):
        self.settings = Settings(**{"queue_timeout_s": 5, "stop_grace_s": 0, **settings})
        self.draining = False
        self.events = []
        self.placement = SimpleNamespace(changed=Signal(), on_gpu=lambda spec: False)
        self.housekeeping = SimpleNamespace(kick=lambda: None)

    def spawn(self, coro):
        return asyncio.get_running_loop().create_task(coro)

    def emit(self, event):
        self.events.append(event)


def actor_for(monkeypatch, script, **spec):
    monkeypatch.setattr(model, "Boot", script.boot_class())
    monkeypatch.setattr(model, "BOOT_BACKOFF_S", 0.001)
    host = FakeHost()
    return model.ModelActor(ModelSpec(**{"id": "m", "architecture": "echo", **spec}), host), host


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_load_starts_every_replica_and_reports_ready(monkeypatch):
    async def go():
        script = Script()
        actor, host = actor_for(monkeypatch, script, replicas=2)
        ready = await actor.load(5)
        assert len(ready) == 2 and all(w.state is WorkerState.READY for w in ready)
        assert actor.activity is Activity.READY and actor.spawns == 2
        assert [type(e) for e in host.events] == [events.Spawned, events.Spawned]

    run(go())


def test_unload_during_a_start_aborts_it_and_kills_the_booting_process(monkeypatch):
    async def go():
        script = Script("hold")
        actor, _ = actor_for(monkeypatch, script)
        loading = asyncio.ensure_future(actor.load(5))
        while not actor.workers:
            await asyncio.sleep(0)
        [starting] = actor.workers
        assert starting.state is WorkerState.STARTING
        assert await actor.unload() == 1
        assert script.aborted == [starting] and starting.process.killed
        assert actor.workers == [] and not actor.booting and actor.reserved == 0
        assert actor.activity is Activity.IDLE
        with pytest.raises(Conflict):
            await loading
        script.release.set()  # nothing is left to finish: no worker comes up afterwards
        await asyncio.sleep(0.01)
        assert actor.workers == [] and script.booted == []

    run(go())


def test_a_boot_error_marks_the_model_failed_after_one_attempt_and_load_resets_it(monkeypatch):
    async def go():
        lines = ["Traceback (most recent call last):", '  File "/x.py", line 1',
                 "venvserve-worker: cannot boot: ModuleNotFoundError: no module named 'torch'"]
        script = Script(BootError("exited", protocol.EXIT_BOOT_ERROR, lines), "ok")
        actor, host = actor_for(monkeypatch, script)
        with pytest.raises(Unavailable) as caught:
            await actor.acquire()
        assert caught.value.code == "model_failed"
        assert actor.failed_reason == "ModuleNotFoundError: no module named 'torch'"
        assert actor.spawns == 1 and actor.activity is Activity.FAILED
        assert isinstance(host.events[-1], events.Failed)
        with pytest.raises(Unavailable):
            await actor.acquire()  # refused at once, no new spawn
        assert actor.spawns == 1
        assert len(await actor.load(5)) == 1  # /load tries again
        assert actor.failed_reason is None and actor.spawns == 2

    run(go())


def test_boots_that_crash_back_off_and_fail_after_three(monkeypatch):
    async def go():
        crash = BootError("exited with status 1", 1, ["Segmentation fault"])
        script = Script(crash, crash, crash)
        actor, _ = actor_for(monkeypatch, script)
        with pytest.raises(Unavailable):
            await actor.load(5)
        assert actor.spawns == model.BOOT_ATTEMPTS and "Segmentation fault" in actor.failed_reason

    run(go())


def test_a_crash_that_recovers_resets_the_count(monkeypatch):
    async def go():
        crash = BootError("exited with status 1", 1, [])
        script = Script(crash, crash, "ok")
        actor, _ = actor_for(monkeypatch, script)
        await actor.load(5)
        assert actor.failed_reason is None and actor.boot_failures == 0 and actor.spawns == 3

    run(go())


def test_queued_requests_get_workers_in_order_and_the_queue_is_bounded(monkeypatch):
    async def go():
        script = Script()
        actor, _ = actor_for(monkeypatch, script, max_queue=2)
        await actor.load(5)
        [worker] = actor.workers
        first = await actor.acquire()
        assert first is worker and worker.state is WorkerState.BUSY and worker.in_flight == 1
        order = []

        async def queued(tag):
            w = await actor.acquire()
            order.append(tag)
            actor.release(w, asyncio.current_task())

        waiting = [asyncio.ensure_future(queued(i)) for i in range(2)]
        await asyncio.sleep(0)
        assert actor.router.queued == 2
        with pytest.raises(TooManyRequests) as caught:
            await actor.acquire()
        assert caught.value.headers["Retry-After"]
        actor.release(worker, asyncio.current_task())
        await asyncio.gather(*waiting)
        assert order == [0, 1] and worker.in_flight == 0 and worker.state is WorkerState.READY
        assert worker.served == 3

    run(go())


def test_a_cancelled_queued_request_leaves_the_queue_at_once(monkeypatch):
    async def go():
        actor, _ = actor_for(monkeypatch, Script())
        await actor.load(5)
        worker = await actor.acquire()
        waiting = asyncio.ensure_future(actor.acquire())
        await asyncio.sleep(0)
        assert actor.router.queued == 1
        waiting.cancel()
        await asyncio.sleep(0)
        assert actor.router.queued == 0
        actor.release(worker, asyncio.current_task())
        assert worker.in_flight == 0  # nobody took it for the request that left

    run(go())


def test_a_crash_is_recorded_and_a_queued_request_gets_a_new_worker(monkeypatch):
    async def go():
        actor, host = actor_for(monkeypatch, Script())
        await actor.load(5)
        [old] = actor.workers
        busy = await actor.acquire()
        waiting = asyncio.ensure_future(actor.acquire())
        await asyncio.sleep(0)
        old.process.exit(-9)  # killed while it held a request
        new = await waiting
        assert new is not old and old.state is WorkerState.CRASHED and old not in actor.workers
        assert any(isinstance(e, events.Crashed) for e in host.events) and len(actor.crashes) == 1
        actor.release(busy, asyncio.current_task())

    run(go())


def test_stop_drains_the_request_in_flight_first(monkeypatch):
    async def go():
        actor, _ = actor_for(monkeypatch, Script())
        await actor.load(5)
        worker = await actor.acquire()
        stopping = asyncio.ensure_future(actor.stop(worker, drain=True))
        await asyncio.sleep(0.01)
        assert worker.state is WorkerState.DRAINING and not worker.process.exited.done()
        actor.release(worker, asyncio.current_task())
        assert await stopping is True
        await actor._post(lambda: None)
        assert worker.state is WorkerState.STOPPED and actor.workers == [] and actor.activity is Activity.IDLE

    run(go())


def test_an_idle_only_stop_leaves_a_worker_that_was_taken_since(monkeypatch):
    async def go():
        actor, _ = actor_for(monkeypatch, Script())
        await actor.load(5)
        worker = await actor.acquire()
        assert await actor.stop(worker, drain=True, only_if_idle=True) is False
        assert worker.state is WorkerState.BUSY

    run(go())


def test_a_worker_handed_to_a_request_that_is_just_leaving_comes_back(monkeypatch):
    async def go():
        actor, _ = actor_for(monkeypatch, Script())
        await actor.load(5)
        worker = await actor.acquire()
        leaving = asyncio.ensure_future(actor.acquire())
        await asyncio.sleep(0)
        leaving.cancel()
        actor.release(worker, asyncio.current_task())  # handed over before the cancellation lands
        with pytest.raises(asyncio.CancelledError):
            await leaving
        assert worker.in_flight == 0 and worker.state is WorkerState.READY
        assert await asyncio.wait_for(actor.acquire(), 1) is worker

    run(go())


def test_nothing_starts_once_the_server_is_shutting_down(monkeypatch):
    async def go():
        actor, host = actor_for(monkeypatch, Script())
        host.draining = True
        for attempt in (actor.load(5), actor.acquire()):
            with pytest.raises(Unavailable) as caught:
                await attempt
            assert caught.value.code == "shutting_down"
        assert actor.spawns == 0 and not actor.booting

    run(go())
