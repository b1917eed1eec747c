"""What the supervisor tells its subscribers (metrics, logs), as typed events.

``Supervisor.subscribe(fn)`` registers ``fn(event)``; it is called on the event
loop, synchronously, and must not block. ``kind`` names the event for labels.
"""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Spawned:
    kind: ClassVar[str] = "spawned"
    model: str
    pid: int | None
    seconds: float  # from spawn to ready


@dataclass(frozen=True)
class Crashed:
    kind: ClassVar[str] = "crashed"
    model: str
    pid: int | None
    reason: str


@dataclass(frozen=True)
class Failed:
    kind: ClassVar[str] = "failed"
    model: str
    reason: str


@dataclass(frozen=True)
class Evicted:
    kind: ClassVar[str] = "evicted"
    model: str
    pid: int | None
    for_model: str  # the model that needed the room


@dataclass(frozen=True)
class RequestDone:
    kind: ClassVar[str] = "request"
    model: str
    queue_s: float  # waiting for a free worker, less the two parts below
    infer_s: float  # on the worker
    env_build_s: float = 0.0  # waiting for the env this request's worker was started in
    load_s: float = 0.0  # waiting for that worker to load its model


Event = Spawned | Crashed | Failed | Evicted | RequestDone
