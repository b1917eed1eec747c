"""The jobs' memory: one SQLite database (WAL) in the data dir.

Every change is one short transaction committed before the caller goes on,
so a SIGKILL loses at most the pages that were in flight: they are still
``pending`` here and run again after a restart. WAL with
``synchronous=NORMAL`` survives a killed process (not a power cut) without
an fsync per page.

Only the scheduler and the job routes write here, from the event loop's
thread; each call is a few milliseconds at most.
"""

import json
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from .model import JobStatus, PageStatus, advance

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    format TEXT NOT NULL,
    options TEXT NOT NULL,
    dir TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS files (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    pages_total INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS pages (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    file_idx INTEGER NOT NULL,
    page INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    PRIMARY KEY (job_id, file_idx, page)
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq);
"""


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds") if ts else None


class JobStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _tx(self):
        return _Transaction(self.db)

    # -- writes --------------------------------------------------------------

    def create(self, job_id: str, model: str, fmt: str, options: dict, job_dir: Path,
               files: list[dict], now: float | None = None) -> None:
        """One job, its files (``name, path, kind, size, pages_total``) and a pending row per page."""
        with self._tx():
            self.db.execute(
                "INSERT INTO jobs (id, status, model, format, options, dir, bytes, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, JobStatus.QUEUED.value, model, fmt, json.dumps(options), str(job_dir),
                 sum(f["size"] for f in files), now or time.time()))
            for idx, f in enumerate(files):
                self.db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)",
                                (job_id, idx, f["name"], str(f["path"]), f["kind"], f["pages_total"]))
                self.db.executemany(
                    "INSERT INTO pages (job_id, file_idx, page, status) VALUES (?, ?, ?, ?)",
                    [(job_id, idx, page, PageStatus.PENDING.value) for page in range(1, f["pages_total"] + 1)])

    def set_status(self, job_id: str, new: JobStatus, error: dict | None = None,
                   now: float | None = None) -> JobStatus:
        """Move a job along the transition table; stamps started_at / finished_at."""
        now = now or time.time()
        with self._tx():
            row = self.db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            status = advance(row["status"], new)
            column = "started_at" if status is JobStatus.RUNNING else "finished_at"
            self.db.execute(f"UPDATE jobs SET status = ?, {column} = ?, error = ? WHERE id = ?",
                            (status.value, now, json.dumps(error) if error else None, job_id))
        return status

    def finish_page(self, job_id: str, file_idx: int, page: int, result: dict) -> None:
        """Commit one page's answer: ``{"text": ...}``, or ``{"error": {...}}`` for a page failed for good."""
        status = PageStatus.FAILED if "error" in result else PageStatus.DONE
        self.db.execute("UPDATE pages SET status = ?, result = ? WHERE job_id = ? AND file_idx = ? AND page = ?",
                        (status.value, json.dumps(result), job_id, file_idx, page))

    def add_attempt(self, job_id: str, file_idx: int, page: int) -> int:
        """Count a failed attempt (a worker crash or timeout); the count so far."""
        self.db.execute("UPDATE pages SET attempts = attempts + 1 WHERE job_id = ? AND file_idx = ? AND page = ?",
                        (job_id, file_idx, page))
        return self.db.execute("SELECT attempts FROM pages WHERE job_id = ? AND file_idx = ? AND page = ?",
                               (job_id, file_idx, page)).fetchone()[0]

    def delete(self, job_id: str) -> None:
        self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    # -- reads ---------------------------------------------------------------

    def row(self, job_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()

    def files(self, job_id: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM files WHERE job_id = ? ORDER BY idx", (job_id,)).fetchall()

    def pending_pages(self, job_id: str) -> list[tuple[int, int]]:
        """``(file_idx, page)`` of every page without an answer, in document order."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT file_idx, page FROM pages WHERE job_id = ? AND status = ? ORDER BY file_idx, page",
            (job_id, PageStatus.PENDING.value))]

    def page_results(self, job_id: str, file_idx: int) -> list[dict | None]:
        """Each page's answer in order; ``None`` for a page still pending."""
        return [json.loads(r[0]) if r[0] else None for r in self.db.execute(
            "SELECT result FROM pages WHERE job_id = ? AND file_idx = ? ORDER BY page", (job_id, file_idx))]

    def view(self, job_id: str) -> dict | None:
        """The job object clients see."""
        row = self.row(job_id)
        if row is None:
            return None
        counts = {(r["file_idx"], r["status"]): r["n"] for r in self.db.execute(
            "SELECT file_idx, status, COUNT(*) AS n FROM pages WHERE job_id = ? GROUP BY file_idx, status",
            (job_id,))}
        files = []
        for f in self.files(job_id):
            done = counts.get((f["idx"], PageStatus.DONE.value), 0)
            failed = counts.get((f["idx"], PageStatus.FAILED.value), 0)
            files.append({"name": f["name"], "pages_total": f["pages_total"],
                          "pages_done": done + failed, "pages_failed": failed})
        view = {
            "id": row["id"], "object": "job", "status": row["status"], "model": row["model"],
            "format": row["format"], "created_at": iso(row["created_at"]), "started_at": iso(row["started_at"]),
            "finished_at": iso(row["finished_at"]), "files": files,
            "pages_total": sum(f["pages_total"] for f in files),
            "pages_done": sum(f["pages_done"] for f in files),
            "pages_failed": sum(f["pages_failed"] for f in files),
        }
        if row["error"]:
            view["error"] = json.loads(row["error"])
        return view

    def listing(self, status: str | None = None, limit: int = 20, cursor: int | None = None) -> tuple[list[str], int | None]:
        """Job ids newest first, and the cursor of the next page (None at the end)."""
        sql, args = "SELECT seq, id FROM jobs WHERE 1 = 1", []
        if status:
            sql += " AND status = ?"
            args.append(status)
        if cursor is not None:
            sql += " AND seq < ?"
            args.append(cursor)
        rows = self.db.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [r["id"] for r in rows], (rows[-1]["seq"] if more else None)

    def unfinished(self) -> list[sqlite3.Row]:
        """Queued and running jobs, oldest first."""
        return self.db.execute("SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY seq",
                               (JobStatus.QUEUED.value, JobStatus.RUNNING.value)).fetchall()

    def expired(self, before: float) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?", (before,))]

    def unfinished_bytes(self) -> int:
        return self.db.execute("SELECT COALESCE(SUM(bytes), 0) FROM jobs WHERE status IN (?, ?)",
                               (JobStatus.QUEUED.value, JobStatus.RUNNING.value)).fetchone()[0]

    def counts_by_status(self) -> dict[str, int]:
        counts = {s.value: 0 for s in JobStatus}
        counts.update({r[0]: r[1] for r in self.db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")})
        return counts

    def oldest_queued(self) -> float | None:
        return self.db.execute("SELECT MIN(created_at) FROM jobs WHERE status = ?",
                               (JobStatus.QUEUED.value,)).fetchone()[0]


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, exc, tb):
        self.db.execute("ROLLBACK" if kind else "COMMIT")
        return False
