"""Housekeeping: idle unload, health checks and memory sampling, off the event loop.

Once a second it unloads idle workers; every ``health_interval_s`` it asks
each worker's /healthz (two misses in a row: replaced). Memory is sampled in
a thread with a timeout (psutil, then NVML or `nvidia-smi`, which may take
seconds), one sample at a time, into a cache that /v1/status and /metrics
read; nothing on the event loop waits for those tools. ``measured.json``
(the models' observed sizes, which placement uses as estimates) is
rewritten only when a figure changes.
"""

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import VenvserveError
from ..system import gpu, processes
from .client import WorkerGone
from .state import ROUTABLE, WorkerState
from .worker import Worker

if TYPE_CHECKING:
    from .supervisor import Supervisor

log = logging.getLogger("venvserve.supervisor")

TICK_S = 1.0
SAMPLE_TIMEOUT_S = 15.0  # nvidia-smi's own timeout is 10 s
GPU_RELEASE_S = 30.0


def measure(pids: list[int], with_gpu: bool) -> dict[int, tuple[float | None, int | None]]:
    """(rss MB, GPU MB) per pid. Blocking: run it in a thread."""
    used = gpu.process_memory_mb() if with_gpu else {}
    return {pid: (processes.rss_mb(pid), used.get(pid)) for pid in pids}


class Housekeeping:
    def __init__(self, host: "Supervisor", measured_path: Path):
        self.host = host
        self.settings = host.settings
        self.measured_path = measured_path
        self.measured: dict = self._load_measured()
        self.memory: dict[int, tuple[float | None, int | None]] = {}  # pid → last sample
        self.misses: dict[int, int] = {}  # worker id → /healthz answers missed in a row
        self.gpu = False  # is there a GPU to ask? (found in a thread at start)
        self._sampling: asyncio.Task | None = None

    async def run(self) -> None:
        last_health = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            self._unload_idle()
            self.kick()
            if time.monotonic() - last_health > self.settings.health_interval_s:
                last_health = time.monotonic()
                for actor in list(self.host.actors.values()):
                    for w in actor.routable():
                        self.host.spawn(self._health_check(actor, w))

    # -- idle unload ------------------------------------------------------------

    def _unload_idle(self) -> None:
        now = time.monotonic()
        for actor in list(self.host.actors.values()):
            timeout = actor.spec.idle_timeout_s
            if timeout is None:
                timeout = self.settings.idle_timeout_s
            for w in actor.routable():
                if (timeout and w.state is WorkerState.READY and not w.calls and not actor.router.queued
                        and now - w.last_used > timeout):
                    log.info("model %s: worker %d idle for %.0fs: unloading", actor.spec.id, w.id, now - w.last_used)
                    self.host.spawn(actor.stop(w, drain=True, only_if_idle=True))

    # -- health -------------------------------------------------------------------

    async def _health_check(self, actor, worker: Worker) -> None:
        try:
            await worker.client.call("GET", "/healthz", timeout=self.settings.health_timeout_s)
            self.misses.pop(worker.id, None)
        except (WorkerGone, VenvserveError):
            self.misses[worker.id] = self.misses.get(worker.id, 0) + 1
            if self.misses[worker.id] >= 2 and worker.state in ROUTABLE:
                log.error("model %s: worker %d (pid %s) stopped answering /healthz: replacing it",
                          worker.model, worker.id, worker.pid)
                worker.process.output.note("stopped answering /healthz: replaced")
                self.misses.pop(worker.id, None)
                await actor.stop(worker, drain=False)

    # -- memory -------------------------------------------------------------------

    def kick(self) -> None:
        """Sample soon, unless a sample is under way."""
        if self._sampling is None or self._sampling.done():
            self._sampling = self.host.spawn(self.sample())

    async def sample(self) -> None:
        workers = [w for actor in list(self.host.actors.values()) for w in actor.routable() if w.pid]
        if not workers:
            return
        try:
            seen = await asyncio.wait_for(asyncio.to_thread(measure, [w.pid for w in workers], self.gpu),
                                          SAMPLE_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("memory sampling took over %.0fs: skipped", SAMPLE_TIMEOUT_S)
            return
        self.memory = seen
        if any(self._remember(w, *seen.get(w.pid, (None, None))) for w in workers):
            await asyncio.to_thread(self._write_measured, json.dumps(self.measured, indent=1))

    def _remember(self, worker: Worker, rss: float | None, gpu_mb: int | None) -> bool:
        """Fold one sample into measured; True when a figure changed."""
        entry = self.measured.setdefault(worker.model, {})
        before = dict(entry)
        if rss:
            peak = entry.get("rss_mb", 0) if entry.get("pid") == worker.pid else 0
            entry["rss_mb"] = max(round(rss), peak)
        if gpu_mb:
            entry["gpu_mb"] = gpu_mb
        entry["pid"] = worker.pid
        return entry != before

    def _write_measured(self, text: str) -> None:
        with contextlib.suppress(OSError):
            tmp = self.measured_path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.measured_path)

    def _load_measured(self) -> dict:
        try:
            data = json.loads(self.measured_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def rss_mb(self, worker: Worker) -> float | None:
        rss = self.memory.get(worker.pid, (None, None))[0]
        return rss if rss is not None else worker.process.info.get("rss_mb")

    def gpu_mb(self, worker: Worker) -> int | None:
        return self.memory.get(worker.pid, (None, None))[1]

    async def wait_gpu_release(self, worker: Worker, since: float) -> None:
        """After a GPU worker exits, wait until the driver no longer lists its pid."""
        if not self.gpu:
            return
        deadline = time.monotonic() + GPU_RELEASE_S
        while time.monotonic() < deadline:
            try:
                listed = await asyncio.wait_for(asyncio.to_thread(gpu.process_memory_mb), SAMPLE_TIMEOUT_S)
            except asyncio.TimeoutError:
                return
            if worker.pid not in listed:
                break
            await asyncio.sleep(0.05)
        log.info("model %s: worker %d's GPU memory freed in %.3fs", worker.model, worker.id, time.monotonic() - since)
