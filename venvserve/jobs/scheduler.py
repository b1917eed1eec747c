"""Feeding job pages to workers in the background, below interactive requests.

The scheduler is the only writer of job progress. One loop wakes on a page
finishing, a job arriving or a short tick, and for each model with work
hands out pages while:

- no interactive request is queued for the model (``model_state()["queued"]``),
- a slot is free (replicas × max_concurrency, less requests in flight and
  pages being rendered),
- the job has fewer than ``PER_JOB_PAGES`` pages out;

jobs of one model take turns page by page (round robin). An interactive
request that arrives while every slot holds a job page waits for one page,
never behind the job's queue, because job pages never wait in the
supervisor's queue themselves.

Each page's answer is committed before anything else happens; pages in
flight are only in memory, so a restart runs them again.
"""

import asyncio
import collections
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VenvserveError
from .events import Events
from .model import MAX_PAGE_RETRIES, JobStatus
from .store import JobStore

log = logging.getLogger("venvserve.jobs")

TICK_S = 0.05  # how often the loop looks again without being woken (a queue may have emptied)
PER_JOB_PAGES = 4  # pages of one job out at once
RETRIED = ("worker_crashed", "timeout")  # a page that met these is tried again
REQUEUED = ("queue_full", "queue_timeout", "client_closed_request")  # not the page's fault: later, uncounted


@dataclass
class Active:
    """A queued or running job as the scheduler feeds it."""
    id: str
    model: str
    fmt: str
    options: dict
    dir: Path
    files: list  # (name, path, kind) by file index
    pending: collections.deque  # (file_idx, page) without an answer, not out
    total: int
    done: int
    out: dict = field(default_factory=dict)  # (file_idx, page) -> task
    started: bool = False


class Scheduler:
    def __init__(self, store: JobStore, pages, supervisor, catalog, events: Events):
        self.store = store
        self.pages = pages
        self.supervisor = supervisor
        self.catalog = catalog
        self.events = events
        self.active: dict[str, Active] = {}
        self.rendering: collections.Counter = collections.Counter()  # model -> pages being rendered
        self.turn: collections.Counter = collections.Counter()  # model -> round-robin position
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.stopping = False
        self.pages_done = 0
        self.page_retries = 0
        self.chores: set[asyncio.Task] = set()  # releases of finished jobs' documents

    # -- intents ---------------------------------------------------------------

    def start(self) -> None:
        for row in self.store.unfinished():
            self.add(row["id"])
        self.task = asyncio.ensure_future(self._loop())

    async def stop(self, grace: float = 0.0) -> None:
        """Stop feeding; pages out get ``grace`` seconds to finish (and be committed), the rest stay
        pending in the store and run again after a restart."""
        self.stopping = True
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        tasks = [t for job in self.active.values() for t in job.out.values()]
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, *self.chores, return_exceptions=True)

    def add(self, job_id: str) -> None:
        row = self.store.row(job_id)
        files = [(f["name"], Path(f["path"]), f["kind"]) for f in self.store.files(job_id)]
        pending = collections.deque(self.store.pending_pages(job_id))
        view = self.store.view(job_id)
        self.active[job_id] = Active(job_id, row["model"], row["format"], _json(row["options"]), Path(row["dir"]),
                                     files, pending, view["pages_total"], view["pages_done"],
                                     started=row["status"] == JobStatus.RUNNING.value)
        if not pending:  # every page answered before a crash, the job not yet marked
            self._maybe_finish(self.active[job_id])
        self.wake.set()

    def cancel(self, job_id: str) -> None:
        """Stop feeding the job's pages at once and mark it cancelled."""
        job = self.active.pop(job_id, None)
        if job:
            for t in job.out.values():
                t.cancel()
        self.store.set_status(job_id, JobStatus.CANCELLED)
        self._ended(job_id, job)

    # -- the loop --------------------------------------------------------------

    async def _loop(self) -> None:
        # The flag, not only cancel(): wait_for may swallow a cancel that races the event (Python < 3.12).
        while not self.stopping:
            try:
                self._dispatch()
            except Exception:  # a bug here must not stop every job for good
                log.exception("the job scheduler failed a pass")
            try:
                await asyncio.wait_for(self.wake.wait(), TICK_S)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()

    def _dispatch(self) -> None:
        by_model = collections.defaultdict(list)
        for job in self.active.values():
            if job.pending and len(job.out) < PER_JOB_PAGES:
                by_model[job.model].append(job)
        for model, jobs in by_model.items():
            if self.catalog.get(model) is None:  # the catalog changed across a restart
                for job in jobs:
                    self._fail(job, {"code": "model_not_found", "message": f"model {model!r} is no longer in "
                                     "this server's catalog"})
                continue
            free = self._free_slots(model)
            start = self.turn[model] % len(jobs)
            ring = collections.deque(jobs[start:] + jobs[:start])
            while free > 0 and ring:
                job = ring.popleft()
                self._send(job, job.pending.popleft())
                free -= 1
                self.turn[model] += 1
                if job.pending and len(job.out) < PER_JOB_PAGES:
                    ring.append(job)

    def _free_slots(self, model: str) -> int:
        spec = self.catalog.get(model)
        state = self.supervisor.model_state(model)
        if state.get("queued"):
            return 0  # interactive requests first
        busy = state.get("in_flight")
        if busy is None:
            busy = sum(w["in_flight"] for w in self.supervisor.worker_views() if w["model"] == model)
        return spec.replicas * spec.max_concurrency - busy - self.rendering[model]

    def _send(self, job: Active, key: tuple[int, int]) -> None:
        if not job.started:
            self.store.set_status(job.id, JobStatus.RUNNING)
            job.started = True
            self.events.publish(job.id, "status", self.store.view(job.id))
        job.out[key] = asyncio.ensure_future(self._run_page(job, *key))

    # -- one page --------------------------------------------------------------

    async def _run_page(self, job: Active, file_idx: int, page: int) -> None:
        name, path, kind = job.files[file_idx]
        try:
            result = await self._attempt(job, path, kind, file_idx, page)
        finally:
            job.out.pop((file_idx, page), None)
            self.wake.set()
        if result is None or self.active.get(job.id) is not job:
            return
        self.store.finish_page(job.id, file_idx, page, result)
        job.done += 1
        self.pages_done += 1
        self.events.publish(job.id, "page", {"file": name, "page": page, "ok": "error" not in result,
                                             "pages_done": job.done, "pages_total": job.total})
        self._maybe_finish(job)

    async def _attempt(self, job: Active, path: Path, kind: str, file_idx: int, page: int) -> dict | None:
        """The page's answer to commit, or None when the page goes back to pending (or the job is over)."""
        self.rendering[job.model] += 1
        try:
            try:
                image = await self.pages.render(path, kind, page, job.dir / "render", job.model)
            finally:
                self.rendering[job.model] -= 1
            return await self.pages.ocr(job.model, image, job.fmt, job.options)
        except VenvserveError as exc:
            return self._after_error(job, file_idx, page, exc)
        except (OSError, ValueError) as exc:  # the kept upload is gone or unreadable
            # The exception's text may name a server path: the log gets it, the job's reader does not.
            log.warning("job %s: page %d cannot be read: %s", job.id, page, exc)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            return {"error": {"code": "page_unreadable", "message": f"page {page} cannot be read: {reason}"}}
        except Exception as exc:  # a page must end with an answer, or the job would never end
            log.exception("job %s: page %d failed unexpectedly", job.id, page)
            return {"error": {"code": "internal_error", "message": f"page {page} failed: {type(exc).__name__}"}}

    def _after_error(self, job: Active, file_idx: int, page: int, exc: VenvserveError) -> dict | None:
        error = {"code": exc.code, "message": exc.message}
        if exc.code in REQUEUED or exc.code == "shutting_down":
            job.pending.appendleft((file_idx, page))
            return None
        if exc.code in RETRIED:
            self.page_retries += 1
            attempts = self.store.add_attempt(job.id, file_idx, page)
            if attempts <= MAX_PAGE_RETRIES:
                log.warning("job %s: page %d failed (%s); trying again (%d of %d)",
                            job.id, page, exc.message, attempts, MAX_PAGE_RETRIES)
                job.pending.appendleft((file_idx, page))
                return None
            error["message"] = f"{exc.message} (tried {attempts} times)"
            return {"error": error}
        if exc.status == 503 or exc.status == 404:  # the model failed or left the catalog: no page can succeed
            self._fail(job, error)
            return None
        return {"error": error}

    # -- endings ---------------------------------------------------------------

    def _maybe_finish(self, job: Active) -> None:
        if job.pending or job.out or self.active.get(job.id) is not job:
            return
        del self.active[job.id]
        if not job.started:
            self.store.set_status(job.id, JobStatus.RUNNING)
        self.store.set_status(job.id, JobStatus.SUCCEEDED)
        self._ended(job.id, job)

    def _fail(self, job: Active, error: dict) -> None:
        if self.active.pop(job.id, None) is None:
            return
        for t in job.out.values():
            if t is not asyncio.current_task():
                t.cancel()
        log.error("job %s failed: %s", job.id, error["message"])
        self.store.set_status(job.id, JobStatus.FAILED, error=error)
        self._ended(job.id, job)

    def _ended(self, job_id: str, job: Active | None) -> None:
        """A job's files go when it ends (decoders let them go too); its rows stay for the TTL."""
        if job is not None:
            shutil.rmtree(job.dir, ignore_errors=True)
            self._background(self._release(job))
        self.events.publish(job_id, "status", self.store.view(job_id))

    async def _release(self, job: Active) -> None:
        for _, path, kind in job.files:
            try:
                await self.pages.done(path, kind)
            except Exception as exc:  # a decoder that died has let go already
                log.debug("job %s: releasing %s: %s", job.id, path, exc)

    def _background(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.chores.add(task)
        task.add_done_callback(self.chores.discard)

def _json(raw: str) -> dict:
    return json.loads(raw)
