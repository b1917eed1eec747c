"""Process facts, through psutil: resident memory, liveness, group kill.

One place for them, so the supervisor, the bench and the CLI agree on what
"alive" and "resident" mean. Every call is cheap (a read of /proc) but still
a system call: the supervisor samples them off the event loop.
"""

import os
import signal

import psutil


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB; None when it is gone or unreadable."""
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except (psutil.Error, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """Running, and not a zombie (a zombie still answers kill(0) but holds nothing)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError):
        return False


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a process group (a worker and anything it started); False when it is gone."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def children(pid: int) -> list[int]:
    """Live direct children of ``pid``."""
    try:
        kids = psutil.Process(pid).children()
    except psutil.Error:
        return []
    return [k.pid for k in kids if is_alive(k.pid)]


def die_with_parent() -> None:
    """In a child before exec (preexec_fn): SIGKILL it when the gateway dies (Linux)."""
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def running_from(base) -> list[int]:
    """Pids whose program (argv[0] or executable) lies under the folder ``base`` (a venv)."""
    prefix = os.path.realpath(base) + os.sep
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline", "exe"]):
        argv0 = (proc.info.get("cmdline") or [""])[0]
        paths = [os.path.abspath(argv0) if argv0 else "", proc.info.get("exe") or ""]
        if any(p.startswith(prefix) for p in paths):
            pids.append(proc.info["pid"])
    return sorted(pids)
