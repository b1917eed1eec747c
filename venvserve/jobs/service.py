"""Jobs as the API and the gateway see them: submit, look, cancel, delete, results, expiry.

The store is ``DATA/jobs/jobs.sqlite3``; a job's uploads and its pages
being rendered are in ``DATA/spool/jobs/<id>/`` (workers read only under the
spool folder), removed when the job ends. Finished jobs and their results are deleted
``job_ttl_h`` after they end.
"""

import asyncio
import fcntl
import logging
import os
import secrets
import shutil
import time
from pathlib import Path

from ..errors import BadRequest, Conflict, InsufficientStorage, NotFound, TooManyRequests, Unavailable
from ..ocr import check_format
from .events import Events
from .model import JobStatus, is_finished
from .pages import Pages
from .results import document, per_file
from .scheduler import Scheduler
from .store import JobStore

log = logging.getLogger("venvserve.jobs")

class Jobs:
    def __init__(self, gw, pages=None):
        self.gw = gw
        self.settings = gw.settings
        self.root = gw.settings.data_dir / "jobs"
        self.files_dir = gw.settings.data_dir / "spool" / "jobs"
        self.files_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store = JobStore(self.root / "jobs.sqlite3")
        self.events = Events()
        self.pages = pages or Pages(gw)
        self.scheduler = Scheduler(self.store, self.pages, gw.supervisor, gw.catalog, self.events)
        self.sweeper: asyncio.Task | None = None
        self.lock: int | None = None

    @classmethod
    async def open(cls, gw) -> "Jobs":
        """The jobs of ``gw``'s data dir, resumed where they stopped."""
        jobs = cls(gw)
        await jobs.start()
        return jobs

    async def start(self) -> None:
        """Resume unfinished jobs, unless another process already feeds this data dir's jobs."""
        self.lock = _exclusive(self.root / "scheduler.lock")
        if self.lock is None:
            log.warning("another process runs the jobs of %s: this one only reads them", self.root)
            return
        self._remove_orphans()
        self.scheduler.start()
        self.sweeper = asyncio.ensure_future(self._sweep_forever())

    async def stop(self, grace: float = 0.0) -> None:
        """Stop feeding pages (those out get ``grace`` seconds); everything else is already on disk."""
        if self.sweeper:
            self.sweeper.cancel()
        await self.scheduler.stop(grace)
        self.store.close()
        if self.lock is not None:
            os.close(self.lock)

    # -- submitting ----------------------------------------------------------

    def new_job(self) -> tuple[str, Path]:
        """A fresh unguessable id (128 bits) and its folder for the uploads."""
        if self.lock is None:
            raise Unavailable("another server process runs the jobs of this data dir", code="jobs_unavailable",
                              hint="submit jobs to that server")
        self.check_room()
        job_id = secrets.token_hex(16)
        job_dir = self.files_dir / job_id
        job_dir.mkdir(mode=0o700)
        return job_id, job_dir

    def check_room(self) -> None:
        unfinished = len(self.store.unfinished())
        if unfinished >= self.settings.max_jobs_queued:
            raise TooManyRequests(f"this server already has {unfinished} unfinished jobs "
                                  f"(limit {self.settings.max_jobs_queued})", code="too_many_jobs",
                                  headers={"Retry-After": "30"}, hint="retry once some jobs have finished")

    async def submit(self, job_id: str, job_dir: Path, uploads: list[tuple[str, Path, int]],
                     model: str | None, fmt: str, options: dict) -> dict:
        """Check everything a page could fail on for the job as a whole, then queue it."""
        self.check_room()
        check_format(fmt)
        model = self.gw.resolve_model(model)
        spec = self.gw.catalog.get(model)
        if spec.task != "ocr":
            raise BadRequest(f"model {model!r} is not an OCR model (task {spec.task!r})", code="wrong_task",
                             hint=f"use POST /v1/models/{model}/infer")
        size = sum(s for _, _, s in uploads)
        quota = int(self.settings.jobs_disk_quota_mb * 2**20)
        used = self.store.unfinished_bytes()
        if used + size > quota:
            raise InsufficientStorage(
                f"the job's files ({size / 2**20:.1f} MB) do not fit in the jobs' disk quota "
                f"({used / 2**20:.1f} of {quota / 2**20:.0f} MB in use)", code="jobs_quota_exceeded",
                hint="wait for running jobs to finish, or raise --jobs-disk-quota-mb")
        files = []
        for name, path, nbytes in uploads:
            kind, count = await self.pages.inspect(path, nbytes)
            files.append({"name": name, "path": path, "kind": kind, "size": nbytes, "pages_total": count})
        self.store.create(job_id, model, fmt, options, job_dir, files)
        self.scheduler.add(job_id)
        log.info("job %s queued: %d files, %d pages on %s", job_id, len(files),
                 sum(f["pages_total"] for f in files), model)
        return self.view(job_id)

    # -- looking ---------------------------------------------------------------

    def view(self, job_id: str) -> dict:
        view = self.store.view(job_id)
        if view is None:
            raise NotFound(f"no job {job_id!r} on this server", code="job_not_found",
                           hint="GET /v1/jobs lists the jobs; finished jobs are deleted after job_ttl_h")
        return view

    def listing(self, status: str | None, limit: int, cursor: int | None) -> tuple[list[dict], int | None]:
        ids, next_cursor = self.store.listing(status, limit, cursor)
        return [v for v in (self.store.view(i) for i in ids) if v], next_cursor

    def result(self, job_id: str, partial: bool = False) -> dict:
        view = self.view(job_id)
        if not is_finished(view["status"]) and not partial:
            raise Conflict(f"job {job_id} is {view['status']} ({view['pages_done']} of {view['pages_total']} "
                           "pages done)", code="job_not_finished",
                           hint="wait for it (GET /v1/jobs/{id}/events), or add ?partial=true")
        files = [per_file(f["name"], view["model"], view["format"], self.store.page_results(job_id, f["idx"]))
                 for f in self.store.files(job_id)]
        return {"id": job_id, "status": view["status"], "model": view["model"], "format": view["format"],
                "pages_total": view["pages_total"], "pages_done": view["pages_done"],
                "pages_failed": view["pages_failed"], "files": files}

    def download(self, job_id: str, fmt: str, partial: bool = False) -> str:
        return document(self.result(job_id, partial)["files"], fmt)

    # -- ending ----------------------------------------------------------------

    def cancel_or_delete(self, job_id: str) -> dict:
        """Cancel a queued or running job (its view answered); delete a finished one and its files."""
        view = self.view(job_id)
        if not is_finished(view["status"]):
            self.scheduler.cancel(job_id)
            return self.view(job_id)
        self._delete(job_id)
        return {**view, "deleted": True}

    def _delete(self, job_id: str) -> None:
        self.store.delete(job_id)
        shutil.rmtree(self.files_dir / job_id, ignore_errors=True)

    async def _sweep_forever(self) -> None:
        ttl_s = self.settings.job_ttl_h * 3600
        while True:
            try:
                for job_id in self.store.expired(time.time() - ttl_s):
                    log.info("job %s expired (finished more than %g h ago): deleted", job_id,
                             self.settings.job_ttl_h)
                    self._delete(job_id)
            except Exception:
                log.exception("expiring finished jobs failed")
            await asyncio.sleep(min(60.0, max(ttl_s / 4, 0.2)))

    def _remove_orphans(self) -> None:
        """Folders of jobs that ended or were never queued (a submit cut short by a crash)."""
        keep = {row["id"] for row in self.store.unfinished()}
        for child in self.files_dir.iterdir():
            if child.name not in keep:
                shutil.rmtree(child, ignore_errors=True)

    # -- metrics ---------------------------------------------------------------

    def figures(self) -> dict:
        oldest = self.store.oldest_queued()
        return {"by_status": self.store.counts_by_status(), "pages_done": self.scheduler.pages_done,
                "page_retries": self.scheduler.page_retries,
                "oldest_queued_s": time.time() - oldest if oldest else 0.0}



def _exclusive(path: Path) -> int | None:
    """An open descriptor holding ``path``'s exclusive lock (dropped when the process dies), or None."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
