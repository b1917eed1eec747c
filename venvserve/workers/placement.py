"""Placement: which models may be resident at once, and whom to evict for a new one.

The arithmetic is budget.py's (pure functions over numbers); this module
feeds it the live workers and carries out its choice. Two dampers keep
models from thrashing: a worker just loaded stays at least
``min_residency_s`` (having served one request is not enough: under a
3-models-in-2-slots load every model had, and every request loaded a
model: 242 evictions/min against 20.5 with the rule; docs/performance.md,
row 10), and a worker that is
serving (requests in flight or queued) is never evicted: a request for a
model that does not fit waits for room instead (bounded by queue_timeout_s).
"""

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..catalog import ModelSpec
from ..errors import Unavailable
from ..settings import Settings
from . import budget as budgeting
from . import events
from .state import LIVE, WorkerState
from .worker import Signal, Worker

if TYPE_CHECKING:
    from .model import ModelActor
    from .supervisor import Supervisor

log = logging.getLogger("venvserve.supervisor")

RECHECK_S = 1.0  # a waiting start re-checks at least this often (residency times run out unannounced)


class Placement:
    def __init__(self, settings: Settings, host: "Supervisor", gpu_total_mb: int):
        self.settings = settings
        self.host = host
        gpu_budget = settings.gpu_memory_budget_mb if settings.gpu_memory_budget_mb >= 0 else gpu_total_mb
        self.budget = budgeting.Budget(settings.max_loaded_models, settings.memory_budget_mb, gpu_budget)
        self.changed = Signal()  # a worker freed, stopped or exited: waiting starts re-check

    def on_gpu(self, spec: ModelSpec) -> bool:
        """Does the model hold GPU memory? ("auto" runs on the GPU when there is one.)"""
        return spec.device == "cuda" or (spec.device == "auto" and self.host.housekeeping.gpu)

    def estimate(self, spec: ModelSpec) -> tuple[float, float]:
        seen = self.host.housekeeping.measured.get(spec.id, {})
        gpu_mb = (seen.get("gpu_mb") or spec.gpu_memory_mb) if self.on_gpu(spec) else 0
        return seen.get("rss_mb") or spec.memory_mb, gpu_mb

    def evictable(self, actor: "ModelActor", worker: Worker, now: float) -> bool:
        return (worker.state is WorkerState.READY and not worker.calls and not actor.router.queued
                and now - worker.ready_at >= self.settings.min_residency_s)

    def residents(self) -> list[budgeting.Resident]:
        now = time.monotonic()
        residents = []
        for actor in self.host.actors.values():
            mem, gpu_mb = self.estimate(actor.spec)
            on_gpu = self.on_gpu(actor.spec)
            for w in actor.workers:
                if w.state in LIVE:
                    residents.append(budgeting.Resident(actor.spec.id, mem, gpu_mb, self.evictable(actor, w, now),
                                                        w.last_used, on_gpu))
            residents += [budgeting.Resident(actor.spec.id, mem, gpu_mb, False, now, on_gpu)] * actor.reserved
        return residents

    async def make_room(self, actor: "ModelActor", bid: int) -> None:
        """Evict idle workers (LRU) until the model fits, then reserve its room; wait, bounded, while it cannot."""
        mem, gpu_mb = self.estimate(actor.spec)
        deadline = time.monotonic() + self.settings.queue_timeout_s
        while True:
            chosen = budgeting.victims(self.budget, self.residents(), actor.spec.id, mem, gpu_mb)
            if chosen == []:
                actor.reserve(bid)  # no await since the check: nobody else took the room
                return
            if chosen:
                stops = [self._evict(victim, actor.spec.id) for victim in self._pick_workers(chosen)]
                await asyncio.gather(*stops)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"no room for {actor.spec.id!r} within the memory budget after "
                                  f"{self.settings.queue_timeout_s:.0f}s", code="no_capacity",
                                  hint="raise the budget, or lower max_loaded_models elsewhere")
            await self.changed.wait(min(left, RECHECK_S))

    async def _evict(self, pick: tuple["ModelActor", Worker], for_model: str) -> None:
        owner, worker = pick
        if await owner.stop(worker, drain=True, only_if_idle=True):
            log.info("budget: evicted %s (worker %d, pid %s, idle) to make room for %s",
                     owner.spec.id, worker.id, worker.pid, for_model)
            self.host.emit(events.Evicted(owner.spec.id, worker.pid, for_model))

    def _pick_workers(self, chosen: list[budgeting.Resident]) -> list[tuple["ModelActor", Worker]]:
        now, picked = time.monotonic(), []
        for resident in chosen:
            owner = self.host.actors[resident.model]
            for w in sorted(owner.workers, key=lambda w: w.last_used):
                if self.evictable(owner, w, now) and all(w is not p for _, p in picked):
                    picked.append((owner, w))
                    break
        return picked

    def view(self) -> dict:
        residents = self.residents()
        return {
            "max_loaded_models": self.budget.max_loaded_models,
            "loaded_models": len({r.model for r in residents}),
            "memory_budget_mb": self.budget.memory_mb,
            "memory_used_mb": round(sum(r.memory_mb for r in residents), 1),
            "gpu_memory_budget_mb": self.budget.gpu_memory_mb,
            "gpu_memory_used_mb": round(sum(r.gpu_memory_mb for r in residents), 1),
        }
