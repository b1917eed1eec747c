"""One worker as the supervisor sees it (its process, client, state and calls),
and the two loop primitives a model's actor is built on: Mailbox and Signal."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VenvserveError
from .client import BadAnswer, WorkerClient
from .process import WorkerProcess, describe_exit
from .state import WorkerState

log = logging.getLogger("venvserve.supervisor")


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
    # The tasks of the requests it holds: the one count of requests in flight.
    calls: set[asyncio.Task] = field(default_factory=set)
    served: int = 0
    started_at: float = field(default_factory=time.time)
    ready_at: float = 0.0  # monotonic; 0 until ready
    env_build_s: float = 0.0  # what its start spent building the env, and loading the model:
    load_s: float = 0.0  # the first requests that waited for it are told so in their timing
    last_used: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def exited(self) -> bool:
        """Its process has ended, whether or not its actor has heard yet."""
        return self.process.returncode is not None

    @property
    def in_flight(self) -> int:
        return len(self.calls)

    @property
    def address(self) -> str:
        sock = self.process.spec.socket
        return str(sock) if sock else f"127.0.0.1:{self.process.port}"


async def crash_error(worker: Worker, exc: Exception) -> VenvserveError:
    """What a request answers whose worker broke the connection (502), with the worker's last words."""
    if isinstance(exc, BadAnswer):
        return VenvserveError(f"the worker of {worker.model!r} (pid {worker.pid}) gave an answer that "
                              f"breaks the protocol: {exc}", code="bad_worker_answer", status=502)
    try:  # the process is usually gone within milliseconds of the broken pipe
        code = await asyncio.wait_for(asyncio.shield(worker.process.proc.wait()), 1.0)
    except asyncio.TimeoutError:
        code = None
    await worker.process.drain_output()
    what = describe_exit(code) if code is not None else f"broke the connection ({exc})"
    message = f"the worker of {worker.model!r} (pid {worker.pid}) {what} while handling this request"
    # Its own words, not a traceback's frames (they name server paths).
    words = [line for line in worker.process.tail(20)
             if line[:1] not in (" ", "\t") and not line.startswith("Traceback (")][-5:]
    if words:
        message += "; last output: " + " | ".join(words)
    return VenvserveError(message, code="worker_crashed", status=502, hint="the next request starts a new worker")


class Signal:
    """Wakes every coroutine waiting for "something changed"; they re-check their condition."""

    def __init__(self):
        self._waiters: set[asyncio.Future] = set()

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Until the next notify, or ``timeout`` seconds: whichever comes first."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)


class Mailbox:
    """Intents applied one at a time, in order, by one runner task: their handlers never interleave."""

    def __init__(self, name: str):
        self.name = name
        self._queue: asyncio.Queue = asyncio.Queue()

    def post(self, handler, *args) -> asyncio.Future:
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((handler, args, done))
        return done

    async def run(self) -> None:
        while True:
            handler, args, done = await self._queue.get()
            try:
                result = handler(*args)
            except Exception as exc:  # a bug in one handler must not stop the model's runner
                log.exception("%s: %s failed", self.name, getattr(handler, "__name__", handler))
                if not done.done():
                    done.set_exception(exc)
                    done.exception()  # logged above; nobody need retrieve it
                continue
            if not done.done():
                done.set_result(result)
