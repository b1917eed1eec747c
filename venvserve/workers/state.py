"""Worker states and the one table of allowed transitions.

    starting ──▶ ready ⇄ busy ──▶ draining ──▶ stopped
        │          │      │           │
        └──────────┴──────┴───────────┴──▶ crashed | failed

Only the supervisor, on the event loop, calls ``advance``; a worker process
never decides to leave a state the gateway may route to.
"""

import enum


class WorkerState(str, enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    STOPPED = "stopped"
    CRASHED = "crashed"
    FAILED = "failed"  # could not boot (reserved exit code)


S = WorkerState
TRANSITIONS = {
    S.STARTING: {S.READY, S.DRAINING, S.CRASHED, S.FAILED},
    S.READY: {S.BUSY, S.DRAINING, S.CRASHED},
    S.BUSY: {S.READY, S.DRAINING, S.CRASHED},
    S.DRAINING: {S.STOPPED, S.CRASHED},
    S.STOPPED: set(),
    S.CRASHED: set(),
    S.FAILED: set(),
}
LIVE = {S.STARTING, S.READY, S.BUSY, S.DRAINING}
ROUTABLE = {S.READY, S.BUSY}


class InvalidTransition(RuntimeError):
    pass


def advance(current: WorkerState, new: WorkerState) -> WorkerState:
    if new is current:
        return current
    if new not in TRANSITIONS[current]:
        raise InvalidTransition(f"worker cannot go from {current.value} to {new.value}")
    return new
