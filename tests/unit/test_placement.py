"""The memory budget (pure arithmetic) and placement's choices over stand-in workers:
LRU eviction, no eviction of a serving model or of one just loaded, waiting for room."""

import asyncio
import time
from types import SimpleNamespace

import pytest

from venvserve.catalog import ModelSpec
from venvserve.errors import Unavailable
from venvserve.settings import Settings
from venvserve.workers import budget as budgeting
from venvserve.workers.placement import Placement
from venvserve.workers.routing import Router
from venvserve.workers.state import WorkerState
from venvserve.workers.worker import Signal

R = budgeting.Resident


def test_fits_counts_models_ram_and_vram_and_zero_means_no_limit():
    two = budgeting.Budget(max_loaded_models=2)
    assert budgeting.fits(two, [R("a", 0, 0, True, 0, False)], "b", 0, 0)
    assert not budgeting.fits(two, [R("a", 0, 0, True, 0, False), R("b", 0, 0, True, 0, False)], "c", 0, 0)
    ram = budgeting.Budget(memory_mb=1000)
    assert budgeting.fits(ram, [R("a", 600, 0, True, 0, False)], "b", 400, 0)
    assert not budgeting.fits(ram, [R("a", 600, 0, True, 0, False)], "b", 401, 0)
    vram = budgeting.Budget(gpu_memory_mb=8000)
    assert not budgeting.fits(vram, [R("a", 0, 6000, True, 0, True)], "b", 0, 3000)
    assert budgeting.fits(budgeting.Budget(), [R("a", 10**6, 10**6, False, 0, True)], "b", 10**6, 10**6)


def test_victims_are_the_fewest_idle_least_recently_used():
    budget = budgeting.Budget(max_loaded_models=2)
    old, new = R("old", 0, 0, True, 1.0, False), R("new", 0, 0, True, 2.0, False)
    assert budgeting.victims(budget, [new, old], "c", 0, 0) == [old]
    busy = R("old", 0, 0, False, 1.0, False)
    assert budgeting.victims(budget, [new, busy], "c", 0, 0) == [new]
    assert budgeting.victims(budget, [busy, R("b", 0, 0, False, 2.0, False)], "c", 0, 0) is None
    assert budgeting.victims(budget, [old], "c", 0, 0) == []


def test_a_cpu_model_never_evicts_a_gpu_model():
    budget = budgeting.Budget(memory_mb=1000)
    gpu_model = R("g", 800, 4000, True, 1.0, True)
    assert budgeting.victims(budget, [gpu_model], "cpu", 500, 0) is None


class StubActor:
    """Just what placement reads and calls of a model's actor."""

    def __init__(self, model_id: str, **spec):
        self.spec = ModelSpec(id=model_id, architecture="echo", **spec)
        self.workers = []
        self.router = Router(model_id, 1, 10, self.workers, lambda worker, task: None)
        self.reservations = set()
        self.stopped = []

    @property
    def reserved(self):
        return len(self.reservations)

    def reserve(self, bid):
        self.reservations.add(bid)

    def add(self, served=0, ready_ago=100.0, busy=False, last_used=0.0):
        worker = SimpleNamespace(id=len(self.workers) + 1, pid=None, model=self.spec.id, served=served,
                                 state=WorkerState.BUSY if busy else WorkerState.READY,
                                 calls={object()} if busy else set(), ready_at=time.monotonic() - ready_ago,
                                 last_used=last_used)
        self.workers.append(worker)
        return worker

    async def stop(self, worker, drain, only_if_idle=False):
        self.stopped.append(worker)
        self.workers.remove(worker)
        return True


def placement_over(*actors, **settings):
    host = SimpleNamespace(actors={a.spec.id: a for a in actors}, events=[],
                           housekeeping=SimpleNamespace(measured={}, gpu=False))
    host.emit = host.events.append
    settings = Settings(**{"queue_timeout_s": 0.3, "min_residency_s": 5, **settings})
    return Placement(settings, host, gpu_total_mb=0), host


def test_the_least_recently_used_idle_worker_is_evicted_to_make_room():
    a, b, c = StubActor("a"), StubActor("b"), StubActor("c")
    older, newer = a.add(served=1, last_used=1.0), b.add(served=1, last_used=2.0)
    placement, host = placement_over(a, b, c, max_loaded_models=2)
    asyncio.run(placement.make_room(c, bid=1))
    assert a.stopped == [older] and b.stopped == [] and newer in b.workers
    assert c.reserved == 1
    assert [(e.model, e.for_model) for e in host.events] == [("a", "c")]


def test_a_model_just_loaded_is_not_evicted_before_its_residency_passed_even_once_it_served():
    placement, _ = placement_over(StubActor("x"))
    actor = StubActor("a")
    fresh = actor.add(served=0, ready_ago=1.0)
    served = actor.add(served=1, ready_ago=1.0)  # serving one request must not end the damping
    settled = actor.add(served=0, ready_ago=10.0)
    now = time.monotonic()
    assert not placement.evictable(actor, fresh, now)
    assert not placement.evictable(actor, served, now)
    assert placement.evictable(actor, settled, now)


def test_a_serving_model_is_never_evicted_and_the_new_one_waits_then_gives_up():
    a, b = StubActor("a"), StubActor("b")
    a.add(busy=True)
    placement, _ = placement_over(a, b, max_loaded_models=1)
    with pytest.raises(Unavailable) as caught:
        asyncio.run(placement.make_room(b, bid=1))
    assert caught.value.code == "no_capacity" and a.stopped == [] and b.reserved == 0


def test_a_model_with_queued_requests_is_not_evicted():
    a, b = StubActor("a"), StubActor("b")
    a.add(served=3)
    a.router.waiters.append(SimpleNamespace(future=SimpleNamespace(done=lambda: False), task=None))
    placement, _ = placement_over(a, b, max_loaded_models=1)
    with pytest.raises(Unavailable):
        asyncio.run(placement.make_room(b, bid=1))
    assert a.stopped == []


def test_a_waiting_start_gets_its_room_when_the_busy_model_becomes_idle():
    a, b = StubActor("a"), StubActor("b")
    busy = a.add(busy=True, served=1)

    async def go():
        placement, _ = placement_over(a, b, max_loaded_models=1, queue_timeout_s=5)
        placement.changed = Signal()
        waiting = asyncio.ensure_future(placement.make_room(b, bid=7))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        busy.calls.clear()
        busy.state = WorkerState.READY
        placement.changed.notify()
        await asyncio.wait_for(waiting, 5)

    asyncio.run(go())
    assert a.stopped == [busy] and b.reservations == {7}


def test_reservations_count_against_the_budget():
    a, b = StubActor("a"), StubActor("b")
    a.reserve(1)
    placement, _ = placement_over(a, b, max_loaded_models=1)
    with pytest.raises(Unavailable):
        asyncio.run(placement.make_room(b, bid=2))
    assert placement.view()["loaded_models"] == 1
