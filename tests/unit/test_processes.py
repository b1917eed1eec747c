"""Process facts: resident memory, liveness (zombies are dead), a group kill reaches grandchildren."""

import os
import subprocess
import sys
import time

from venvserve.system import processes


def test_rss_and_liveness_of_a_running_and_a_finished_process():
    assert processes.rss_mb(os.getpid()) > 1
    assert processes.is_alive(os.getpid())
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert not processes.is_alive(done.pid)
    assert processes.rss_mb(done.pid) is None


def test_a_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    try:
        assert not processes.is_alive(child.pid)
    finally:
        child.wait()


def test_kill_group_reaches_what_the_process_started():
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                               "print(p.pid, flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, start_new_session=True)
    grandchild = int(leader.stdout.readline())
    assert processes.kill_group(leader.pid)
    leader.wait(10)
    deadline = time.monotonic() + 10
    while processes.is_alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not processes.is_alive(grandchild)


def test_kill_group_of_no_process_says_so():
    done = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    done.wait()
    assert not processes.kill_group(done.pid)
