"""Make the worker die with the gateway: no orphan keeps holding memory.

Two independent mechanisms, because each alone has a gap:
- PR_SET_PDEATHSIG (Linux) delivers SIGKILL the moment the parent dies;
- stdin is a pipe whose write end only the gateway holds: EOF means the
  gateway is gone (covers non-Linux and a re-parented worker).
"""

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1


def _set_pdeathsig(parent_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    # The parent may have died before prctl ran.
    if os.getppid() != parent_pid:
        os._exit(1)


def _watch_stdin() -> None:
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(1)


def install(parent_pid: int) -> None:
    _set_pdeathsig(parent_pid)
    threading.Thread(target=_watch_stdin, name="lifeline", daemon=True).start()
