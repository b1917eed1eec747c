"""Worker states, the one table of allowed transitions, and a model's activities.

    starting ──▶ ready ⇄ busy ──▶ draining ──▶ stopped
        │          │      │           │
        └──────────┴──────┴───────────┴──▶ crashed | failed

Only a model's actor (model.py), on the event loop, calls ``advance``; a
worker process never decides to leave a state the gateway may route to.
"""

import enum


class WorkerState(str, enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    STOPPED = "stopped"
    CRASHED = "crashed"
    FAILED = "failed"  # could not boot


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


class Activity(str, enum.Enum):
    """What a model is doing, as /v1/status shows it: every value the actor writes."""

    IDLE = "idle"  # no worker, nothing starting
    BUILDING_ENV = "building env"  # waiting for `uv sync` of its env
    WAITING_FOR_MEMORY = "waiting for memory"  # waiting for room in the memory budget
    LOADING = "loading"  # a worker process is loading the model
    BACKING_OFF = "backing off"  # a boot failed; the next try waits
    READY = "ready"  # at least one worker serves
    STOPPING = "stopping"  # unloading: workers finish what they hold, then exit
    FAILED = "failed"  # will not start again until /load
