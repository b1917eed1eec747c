"""One attempt to start one worker of a model: a task its actor owns.

It finds the interpreter (building the env if needed), waits for room in
the memory budget, spawns the process and waits for its ready line, and
reports each step to the actor's mailbox; it writes no state itself (the
budget reservation is the actor's ``reserve``, called by placement).
Cancelling it aborts the start and kills the process it was starting.
"""

import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import VenvserveError
from .client import WorkerClient
from .process import BootError, LaunchSpec, WorkerProcess
from .state import Activity
from .worker import Worker

if TYPE_CHECKING:
    from .model import ModelActor

log = logging.getLogger("venvserve.supervisor")


class Boot:
    def __init__(self, actor: "ModelActor", bid: int, delay: float):
        self.actor = actor
        self.bid = bid
        self.delay = delay

    def _report(self, handler, *args) -> None:
        self.actor._post(handler, self.bid, *args)

    async def run(self) -> None:
        actor, host = self.actor, self.actor.host
        worker = None
        try:
            if self.delay:
                self._report(actor.progress, Activity.BACKING_OFF)
                await asyncio.sleep(self.delay)
            t_env = time.monotonic()
            python, venv, built = await self._interpreter()
            env_build_s = time.monotonic() - t_env if built else 0.0
            self._report(actor.progress, Activity.WAITING_FOR_MEMORY)
            await host.placement.make_room(actor, self.bid)
            worker = self._new_worker(python, venv)
            worker.env_build_s = env_build_s
            self._report(actor._on_launching, worker)
            log.info("model %s: loading model (worker %d, %s)", actor.spec.id, worker.id, python)
            t0 = time.monotonic()
            await worker.process.start(host.settings.load_timeout_s)
            process = worker.process
            worker.client = WorkerClient(str(process.spec.socket) if process.spec.socket else None, process.port,
                                         process.token, pool_size=actor.spec.max_concurrency + 2)
            worker.load_s = time.monotonic() - t0
            self._report(actor._on_booted, worker, worker.load_s)
        except asyncio.CancelledError:
            self._report(actor._on_boot_ended, worker, None)
            raise
        except (BootError, VenvserveError) as exc:
            self._report(actor._on_boot_ended, worker, await self._broken_env(exc))
        except Exception as exc:
            log.exception("model %s: starting a worker failed", actor.spec.id)
            self._report(actor._on_boot_ended, worker,
                         VenvserveError(f"a worker of {actor.spec.id!r} could not be started: {exc}"))

    async def _broken_env(self, exc: Exception) -> Exception:
        """A boot that failed in a built env whose files no longer match what uv installed: the env
        is now failed (envs/integrity.py) and so is the model, once, saying how to repair it."""
        env = self.actor.spec.python_env
        if not isinstance(exc, BootError) or not env:
            return exc
        try:
            report = await self.actor.host.envs.verify_async(env)
        except Exception:  # a check that cannot run must not hide the boot's own error
            log.exception("model %s: checking env %s failed", self.actor.spec.id, env)
            return exc
        if report is None or report.ok:
            return exc
        from venvserve_worker import protocol

        return BootError(f"env {env!r} is broken: {report.reason()}; `venvserve envs install {env}` "
                         f"(or POST /v1/envs/{env}/install) rebuilds it", protocol.EXIT_BOOT_ERROR, [])

    async def _interpreter(self) -> tuple[str, Path | None, bool]:
        """The worker's interpreter, its venv, and whether an env build was waited for."""
        spec, envs = self.actor.spec, self.actor.host.envs
        if spec.python:
            return spec.python, None, False
        if spec.python_env:
            status = await asyncio.to_thread(envs.status, spec.python_env)  # hashes the template: off the loop
            building = status.state.value not in ("ready", "external")
            if building:
                self._report(self.actor.progress, Activity.BUILDING_ENV)
                log.info("model %s: building env %s", spec.id, spec.python_env)
            # Shielded: an aborted start must not abort a build other models may wait for.
            status = await asyncio.shield(envs.ensure(spec.python_env))
            return str(status.python), status.path, building
        return sys.executable, None, False

    def _new_worker(self, python: str, venv: Path | None) -> Worker:
        spec, host = self.actor.spec, self.actor.host
        settings = host.settings
        wid = host.next_worker_id()
        launch = LaunchSpec(
            model=spec.id, architecture=spec.architecture, python=python, options=spec.options,
            max_concurrency=spec.max_concurrency, runtime_path=host.runtime, env=host.worker_env(),
            socket=host.run_dir / f"w{wid}.sock" if settings.worker_transport == "unix" else None,
            input_dir=settings.data_dir / "spool")
        process = WorkerProcess(launch, on_line=host.ring(spec.id).append)
        return Worker(wid, spec.id, process, python, spec.python_env, venv)
