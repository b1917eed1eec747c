"""Routing one model's requests: pick a replica, queue with a bound, back-pressure.

A request takes the least busy ready worker at once, unless others are
already queued (first come, first served). Otherwise it queues: past the
model's ``max_queue`` it is refused at once with 429 and Retry-After; a
queued request waits at most ``queue_timeout_s`` (504), leaves the queue the
moment its client goes or its task is cancelled, and is handed a worker
directly when one frees up (no thundering herd, no re-check race).
"""

import asyncio
import collections
from dataclasses import dataclass
from typing import Awaitable, Callable

from ..errors import ClientGone, GatewayTimeout, TooManyRequests
from .state import ROUTABLE
from .worker import Worker

QUEUE_POLL_S = 0.25  # how often a queued request checks that its client is still there


@dataclass(eq=False)
class Waiter:
    future: asyncio.Future
    task: asyncio.Task | None


class Router:
    def __init__(self, model: str, max_concurrency: int, max_queue: int, workers: list[Worker],
                 take: Callable[[Worker, asyncio.Task | None], None]):
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.workers = workers  # the actor's own list, read here, never written
        self.take = take  # the actor's: marks a worker taken by a request
        self.waiters: collections.deque[Waiter] = collections.deque()

    @property
    def queued(self) -> int:
        return sum(1 for w in self.waiters if not w.future.done())

    def pick(self) -> Worker | None:
        """The least busy routable worker with a free slot; the least recently used on a tie.
        A worker whose process has ended is skipped though its exit is still in the actor's mailbox."""
        best = None
        for w in self.workers:
            if w.state in ROUTABLE and len(w.calls) < self.max_concurrency and not w.exited:
                if best is None or (len(w.calls), w.last_used) < (len(best.calls), best.last_used):
                    best = w
        return best

    def admit(self) -> None:
        """Refuse at once when the queue is full: the client retries, nothing hangs."""
        queued = self.queued
        if queued >= self.max_queue:
            plural = "" if queued == 1 else "s"
            raise TooManyRequests(f"model {self.model!r} has {queued} request{plural} queued (limit {self.max_queue})",
                                  headers={"Retry-After": "1"}, hint="retry after a second")

    def take_now(self, task: asyncio.Task | None) -> Worker | None:
        """A free worker for a request that arrives when nobody is queued; None: it must queue."""
        if self.queued:
            return None
        worker = self.pick()
        if worker is not None:
            self.take(worker, task)
        return worker

    def serve(self) -> None:
        """Hand free workers to queued requests, oldest first."""
        while self.waiters:
            if self.waiters[0].future.done():  # cancelled, timed out or failed already
                self.waiters.popleft()
                continue
            worker = self.pick()
            if worker is None:
                return
            waiter = self.waiters.popleft()
            self.take(worker, waiter.task)
            waiter.future.set_result(worker)

    def fail_all(self, error: Exception) -> None:
        waiters, self.waiters = self.waiters, collections.deque()
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)

    async def wait(self, timeout: float, disconnected: Callable[[], Awaitable[bool]] | None,
                   give_back: Callable[[Worker, asyncio.Task | None], None]) -> Worker:
        """Queue until a worker is handed over; the caller must have called ``admit``."""
        loop = asyncio.get_running_loop()
        waiter = Waiter(loop.create_future(), asyncio.current_task())
        self.waiters.append(waiter)
        self.serve()  # a worker may be free while those ahead were leaving
        deadline = loop.time() + timeout
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise GatewayTimeout(f"no worker of {self.model!r} was free within {timeout:.0f}s",
                                         code="queue_timeout")
                await asyncio.wait((waiter.future,), timeout=min(left, QUEUE_POLL_S) if disconnected else left)
                if waiter.future.done():
                    return waiter.future.result()
                if disconnected and await disconnected():
                    raise ClientGone(f"the client left while queued for {self.model!r}")
        except BaseException:
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                give_back(future.result(), waiter.task)  # handed a worker just as it gave up
            else:
                future.cancel()
            try:
                self.waiters.remove(waiter)
            except ValueError:
                pass
            raise
