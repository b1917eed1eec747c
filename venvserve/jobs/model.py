"""The model of a job: its states as a transition table, and what a client sees of it.

    queued ──▶ running ──▶ succeeded
       │          │  ╲──▶ failed
       ╰──────────┴───▶ cancelled

A job is ``succeeded`` when every page has an answer, even if some pages
failed for good (each carries its error); ``failed`` means the job as a whole
could not go on (its model failed, its file vanished). Pages are ``pending``
until they have an answer, then ``done`` or ``failed``; a page in flight is
still ``pending`` in the store, so a restart runs it again.
"""

import enum


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

FINISHED = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)


class IllegalTransition(ValueError):
    pass


def advance(old: JobStatus | str, new: JobStatus | str) -> JobStatus:
    """``new`` if the table allows ``old → new``; raises otherwise."""
    old, new = JobStatus(old), JobStatus(new)
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"a job cannot go from {old.value} to {new.value}")
    return new


def is_finished(status: JobStatus | str) -> bool:
    return JobStatus(status) in FINISHED


class PageStatus(str, enum.Enum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


# A worker crash (or a timeout) on a page is retried this many times; then the page fails for good.
MAX_PAGE_RETRIES = 3
