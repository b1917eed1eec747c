"""The supervisor under faults, with real processes: crashes, hangs, boots that fail,
unloads during loads, a killed gateway, SIGTERM, the memory budget and back-pressure."""

import concurrent.futures
import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from support import Highest, assert_error, pid_alive, wait_until

ECHO = {"id": "echo", "architecture": "echo"}


def worker_processes(pid: int) -> list[int]:
    """Live worker processes the gateway ``pid`` started (decoders and other helpers are not counted)."""
    found = []
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and "venvserve_worker" in " ".join(child.cmdline()):
                found.append(child.pid)
    return found


def descendants_running(pid: int, word: str) -> list[psutil.Process]:
    found = []
    for process in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if word in " ".join(process.cmdline()):
                found.append(process)
    return found


def most_workers(pid: int) -> Highest:
    """The most live worker processes the gateway had at once while the block ran."""
    return Highest(lambda: len(worker_processes(pid)), interval=0.002, ignore=(psutil.Error,))


def test_kill_9_of_a_worker_mid_request_answers_502_then_recovers(server_factory):
    server = server_factory([ECHO])
    first = server.client.post("/v1/models/echo/infer", json={"n": 0})
    pid = first.json()["pid"]
    result = {}

    def slow_request():
        result["response"] = server.client.post("/v1/models/echo/infer", json={"sleep_s": 30})

    thread = threading.Thread(target=slow_request)
    thread.start()
    wait_until(lambda: any(w["in_flight"] for w in server.workers()))
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    thread.join(10)
    answered_after = time.monotonic() - killed_at
    response = result["response"]
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "worker_crashed"
    assert "SIGKILL" in error["message"]
    assert answered_after < 10, answered_after  # at the kill, not when the 30 s request would have ended
    print(f"502 answered {answered_after * 1000:.0f} ms after the worker's SIGKILL")
    again = server.client.post("/v1/models/echo/infer", json={"n": 1})
    assert again.status_code == 200
    assert again.json()["pid"] != pid


def test_a_crash_inside_a_request_is_a_502_with_the_workers_last_words(server_factory):
    server = server_factory([ECHO])
    response = server.client.post("/v1/models/echo/infer", json={"crash": True})
    assert response.status_code == 502
    assert "crashing as asked" in response.json()["error"]["message"]
    assert server.client.post("/v1/models/echo/infer", json={"n": 1}).status_code == 200


def test_a_request_queued_behind_a_crash_gets_a_new_worker_not_the_dead_one(server_factory):
    """The crashing request's slot is handed on only once the worker is known to be gone: the
    request queued behind it waits for a new worker instead of meeting the dead one (a job's
    next page once failed as a second crash this way)."""
    server = server_factory([ECHO])
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]

    def post(body):
        return httpx.post(server.url + "/v1/models/echo/infer", json=body, timeout=60)

    queued = lambda n: server.client.get("/v1/status").json()["models"]["echo"]["queued"] == n  # noqa: E731
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        busy = pool.submit(post, {"sleep_s": 1.0})
        wait_until(lambda: server.client.get("/v1/status").json()["workers"][0]["in_flight"] == 1)
        crash = pool.submit(post, {"crash": True})
        wait_until(lambda: queued(1))
        after = pool.submit(post, {"n": 3})
        wait_until(lambda: queued(2))
        assert busy.result().status_code == 200
        assert_error(crash.result(), 502, "worker_crashed")
        answer = after.result()
    assert answer.status_code == 200, answer.text
    assert answer.json()["pid"] not in (pid, None)


def test_a_backend_exception_is_a_json_error_and_the_worker_keeps_serving(server_factory):
    server = server_factory([ECHO])
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]
    response = server.client.post("/v1/models/echo/infer", json={"raise": "boom"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "backend_error"
    assert "boom" in response.json()["error"]["message"]
    assert server.client.post("/v1/models/echo/infer", json={}).json()["pid"] == pid


def test_a_model_that_cannot_load_fails_after_one_attempt_with_a_one_line_reason(server_factory):
    server = server_factory([{"id": "broken", "architecture": "echo", "options": {"fail_load": "no weights"}}])
    error = assert_error(server.client.post("/v1/models/broken/infer", json={}), 503, "model_failed")
    assert "no weights" in error["message"]
    assert "Traceback" not in error["message"] and "\n" not in error["message"]
    assert "/load" in error["hint"]
    # Afterwards: a 503 at once, no new spawn.
    assert_error(server.client.post("/v1/models/broken/infer", json={}), 503, "model_failed")
    state = server.client.get("/v1/models/broken").json()
    assert state["state"] == "failed" and state["available"] is True
    assert "no weights" in state["reason"]
    assert state["spawns"] == 1  # the same error would come again: one attempt is enough
    # `load` tries again (and fails again, with the same reason).
    assert_error(server.client.post("/v1/models/broken/load"), 503, "model_failed")
    assert server.client.get("/v1/models/broken").json()["spawns"] == 2


def test_a_boot_that_crashes_is_retried_with_backoff_then_marked_failed(server_factory):
    # An interpreter that exits 1 at once: a crash, not the runtime's "cannot boot" status.
    server = server_factory([{"id": "crashy", "architecture": "echo", "python": "/bin/false"}])
    assert_error(server.client.post("/v1/models/crashy/infer", json={}), 503, "model_failed")
    state = server.client.get("/v1/models/crashy").json()
    assert state["state"] == "failed" and state["spawns"] == 3  # BOOT_ATTEMPTS


def test_unload_during_load_aborts_the_start(server_factory):
    server = server_factory([{"id": "slow", "architecture": "echo", "options": {"load_s": 3}}])
    loading = concurrent.futures.ThreadPoolExecutor(1).submit(
        lambda: httpx.post(server.url + "/v1/models/slow/load", timeout=30))
    [worker] = wait_until(lambda: [w for w in server.workers() if w["pid"]])  # up, its model still loading
    assert worker["state"] == "starting"
    assert server.client.get("/v1/models/slow").json()["state"] == "loading"
    unloaded = server.client.post("/v1/models/slow/unload")
    assert unloaded.status_code == 200 and unloaded.json()["stopped_workers"] == 1
    assert not pid_alive(worker["pid"])
    assert_error(loading.result(), 409, "load_cancelled")
    assert server.workers() == []
    model = server.client.get("/v1/models/slow").json()
    assert model["state"] == "unloaded" and model["spawns"] == 1
    # The next request starts it afresh.
    assert server.client.post("/v1/models/slow/infer", json={"n": 1}).json()["n"] == 1


def test_kill_9_of_the_gateway_leaves_no_worker_behind(server_factory):
    server = server_factory([ECHO, {"id": "echo2", "architecture": "echo"}])
    pids = [server.client.post(f"/v1/models/{m}/infer", json={}).json()["pid"] for m in ("echo", "echo2")]
    assert all(pid_alive(p) for p in pids)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    t0 = time.monotonic()
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=3.0)
    print(f"workers gone {time.monotonic() - t0:.3f}s after the gateway's SIGKILL")


def test_sigterm_finishes_the_request_in_flight_then_exits_cleanly(server_factory):
    server = server_factory([ECHO])
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]
    result = {}

    def slow_request():
        result["response"] = server.client.post("/v1/models/echo/infer", json={"sleep_s": 2, "n": 7})

    thread = threading.Thread(target=slow_request)
    thread.start()
    wait_until(lambda: any(w["in_flight"] for w in server.workers()))
    server.proc.send_signal(signal.SIGTERM)
    thread.join(15)
    assert result["response"].status_code == 200
    assert result["response"].json()["n"] == 7
    assert server.proc.wait(15) == 0
    assert not pid_alive(pid)


def test_sigterm_past_the_grace_period_answers_503_shutting_down_to_running_and_queued(server_factory):
    server = server_factory([ECHO], env={"VENVSERVE_STOP_GRACE_S": "1"})
    server.client.post("/v1/models/echo/infer", json={})
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = pool.submit(lambda: httpx.post(server.url + "/v1/models/echo/infer", json={"sleep_s": 60},
                                                 timeout=60))
        wait_until(lambda: any(w["in_flight"] for w in server.workers()))
        queued = pool.submit(lambda: httpx.post(server.url + "/v1/models/echo/infer", json={"n": 2}, timeout=60))
        wait_until(lambda: server.client.get("/v1/status").json()["models"]["echo"]["queued"] == 1)
        server.proc.send_signal(signal.SIGTERM)
        assert_error(running.result(), 503, "shutting_down")
        assert_error(queued.result(), 503, "shutting_down")
    assert server.proc.wait(30) == 0


def test_one_loaded_model_at_a_time_when_the_budget_says_so(server_factory):
    # Forty swaps back to back: the budget is under test here, not the damping (residency 0).
    server = server_factory([{"id": "a", "architecture": "echo"}, {"id": "b", "architecture": "echo"}],
                            args=("--max-loaded-models", "1"), env={"VENVSERVE_MIN_RESIDENCY_S": "0"})
    with most_workers(server.pid) as seen:
        for round_ in range(20):
            for model in ("a", "b"):
                answer = server.client.post(f"/v1/models/{model}/infer", json={"round": round_, "m": model})
                assert answer.status_code == 200
                assert answer.json()["round"] == round_ and answer.json()["m"] == model
    assert seen.most == 1
    assert server.client.get("/v1/status").json()["budget"]["loaded_models"] == 1


def test_200_concurrent_requests_over_three_models_with_room_for_two(server_factory):
    models = [{"id": m, "architecture": "echo", "max_queue": 20} for m in ("a", "b", "c")]
    server = server_factory(models, args=("--max-loaded-models", "2"))
    outcomes = {"ok": 0, "busy": 0, "wrong": 0, "other": 0}
    refusals = []
    lock = threading.Lock()

    def one(i: int):
        model = "abc"[i % 3]
        with httpx.Client(base_url=server.url, timeout=120) as client:
            r = client.post(f"/v1/models/{model}/infer", json={"i": i, "sleep_s": 0.02})
        with lock:
            if r.status_code == 200:
                outcomes["ok" if r.json()["i"] == i else "wrong"] += 1
            elif r.status_code == 429:
                outcomes["busy"] += 1
                refusals.append((r.headers.get("retry-after"), r.json()["error"]))
            else:
                outcomes["other"] += 1

    with most_workers(server.pid) as seen, concurrent.futures.ThreadPoolExecutor(64) as pool:
        list(pool.map(one, range(200)))
    print(outcomes)
    assert outcomes["wrong"] == 0 and outcomes["other"] == 0
    assert outcomes["ok"] + outcomes["busy"] == 200
    assert outcomes["ok"] > 0
    # Refused on arrival because the queue was full, never after a wait in it (its timeout is 120 s).
    assert all(after and error["code"] == "queue_full" and "(limit 20)" in error["message"]
               for after, error in refusals)
    assert seen.most <= 2  # never more resident than the budget, at any moment of the run


def test_a_hung_request_gets_504_and_the_worker_is_replaced(server_factory):
    server = server_factory([ECHO], args=("--request-timeout-s", "1"))
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]
    response = server.client.post("/v1/models/echo/infer", json={"hang": True})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
    wait_until(lambda: not pid_alive(pid), timeout=15)
    again = server.client.post("/v1/models/echo/infer", json={"n": 2})
    assert again.status_code == 200 and again.json()["pid"] != pid


def test_replicas_share_the_load_and_each_request_goes_to_the_least_busy(server_factory):
    # Two replicas with room for two requests each: "least busy" puts two concurrent requests on
    # different workers, where "first with a free slot" would stack both on one.
    server = server_factory([{"id": "echo", "architecture": "echo", "replicas": 2, "max_concurrency": 2}])
    assert server.client.post("/v1/models/echo/load").status_code == 200
    assert len(server.workers()) == 2
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(lambda: httpx.post(server.url + "/v1/models/echo/infer", json={"sleep_s": 2}, timeout=30))
        wait_until(lambda: sum(w["in_flight"] for w in server.workers()) == 1)
        second = pool.submit(lambda: httpx.post(server.url + "/v1/models/echo/infer", json={"sleep_s": 2}, timeout=30))
        wait_until(lambda: sum(w["in_flight"] for w in server.workers()) == 2)
        assert sorted(w["in_flight"] for w in server.workers()) == [1, 1]
        pids = {first.result().json()["pid"], second.result().json()["pid"]}
    assert pids == {w["pid"] for w in server.workers()}


def test_idle_models_are_unloaded_and_load_unload_work(server_factory):
    server = server_factory([{"id": "echo", "architecture": "echo", "idle_timeout_s": 1}])
    pid = server.client.post("/v1/models/echo/load").json()["pids"][0]
    assert server.client.get("/v1/models/echo").json()["state"] == "loaded"
    wait_until(lambda: not pid_alive(pid), timeout=10)
    assert server.client.get("/v1/models/echo").json()["state"] == "unloaded"
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]
    assert server.client.post("/v1/models/echo/unload").json()["stopped_workers"] == 1
    assert not pid_alive(pid)
    assert server.workers() == []


def test_status_shows_each_worker(server_factory):
    server = server_factory([ECHO])
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]
    [worker] = server.workers()
    assert worker["pid"] == pid and worker["model"] == "echo" and worker["state"] == "ready"
    assert worker["requests"] == 1 and worker["rss_mb"] > 0 and worker["idle_s"] >= 0
    models = server.client.get("/v1/status").json()["models"]
    assert models["echo"]["state"] == "loaded" and models["echo"]["queued"] == 0


def _slow_template(root: Path) -> Path:
    """An env with no packages whose post_install sleeps the first time it runs."""
    template = root / "envs" / "slow"
    template.mkdir(parents=True)
    (template / "pyproject.toml").write_text(
        '[project]\nname = "slow"\nversion = "0"\nrequires-python = ">=3.9"\ndependencies = []\n\n'
        '[tool.uv]\npackage = false\n')
    (template / "uv.lock").write_text(
        'version = 1\nrevision = 3\nrequires-python = ">=3.9"\n\n[[package]]\nname = "slow"\n'
        'version = "0"\nsource = { virtual = "." }\n')
    (template / "post_install.sh").write_text(
        'if [ -n "$SLOW_FLAG" ] && [ ! -e "$SLOW_FLAG" ]; then touch "$SLOW_FLAG"; sleep 60; fi\n')
    return template.parent


def test_an_env_build_killed_midway_is_never_used_and_is_rebuilt(server_factory, tmp_path):
    envs = _slow_template(tmp_path)
    flag = tmp_path / "slept-once"
    catalog = [{"id": "probe", "architecture": "echo", "python_env": "slow"}]
    data = tmp_path / "data"
    server = server_factory(catalog, envs_dir=envs, data_dir=data, env={"SLOW_FLAG": str(flag)})
    pending = concurrent.futures.ThreadPoolExecutor(1).submit(
        lambda: httpx.post(server.url + "/v1/models/probe/infer", json={}, timeout=60))
    wait_until(lambda: flag.exists(), timeout=30)
    assert server.client.get("/v1/envs/slow").json()["status"] == "installing"
    server.proc.send_signal(signal.SIGKILL)  # the gateway dies mid-build
    server.proc.wait()
    with pytest.raises(httpx.HTTPError):
        pending.result()
    [half_built] = [p for p in (data / "envs" / "slow").iterdir() if p.is_dir()]
    assert not Path(f"{half_built}.ready").exists()

    server = server_factory(catalog, envs_dir=envs, data_dir=data, env={"SLOW_FLAG": str(flag)})
    assert server.client.get("/v1/envs/slow").json()["status"] == "not_installed"
    answer = server.client.post("/v1/models/probe/infer", json={})
    assert answer.status_code == 200
    python = answer.json()["python"]["executable"]
    build = Path(python).parent.parent
    assert Path(f"{build}.ready").exists()
    env = server.client.get("/v1/envs/slow").json()
    assert env["status"] == "ready" and env["builds"] == 2
    assert "removed a half-built env" in server.output()


def test_an_env_build_whose_process_is_killed_fails_cleanly_and_the_next_request_rebuilds(
        server_factory, tmp_path):
    envs = _slow_template(tmp_path)
    flag = tmp_path / "slept-once"
    catalog = [{"id": "probe", "architecture": "echo", "python_env": "slow"}]
    server = server_factory(catalog, envs_dir=envs, env={"SLOW_FLAG": str(flag)})
    pending = concurrent.futures.ThreadPoolExecutor(1).submit(
        lambda: httpx.post(server.url + "/v1/models/probe/infer", json={}, timeout=60))
    wait_until(lambda: flag.exists(), timeout=30)
    # Only this server's own build: its descendants running post_install.sh.
    for process in wait_until(lambda: descendants_running(server.pid, "post_install.sh")):
        with contextlib.suppress(psutil.Error):
            process.kill()
    failed = pending.result()
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "env_build_failed"
    assert server.client.get("/v1/envs/slow").json()["status"] == "failed"
    assert server.workers() == []
    answer = server.client.post("/v1/models/probe/infer", json={})
    assert answer.status_code == 200
    build = Path(answer.json()["python"]["executable"]).parent.parent
    assert Path(f"{build}.ready").exists()


def test_measured_memory_is_remembered_across_restarts(server_factory, tmp_path):
    data = tmp_path / "data"
    catalog = [{"id": "big", "architecture": "echo", "options": {"allocate_mb": 64}}]
    server = server_factory(catalog, data_dir=data)
    server.client.post("/v1/models/big/infer", json={})
    server.stop()
    measured = json.loads((data / "measured.json").read_text())
    assert measured["big"]["rss_mb"] > 64


def test_a_client_that_disconnects_while_queued_leaves_the_queue(server_factory):
    server = server_factory([ECHO])
    server.client.post("/v1/models/echo/infer", json={})
    busy = concurrent.futures.ThreadPoolExecutor(1).submit(
        lambda: httpx.post(server.url + "/v1/models/echo/infer", json={"sleep_s": 3}, timeout=30))
    wait_until(lambda: any(w["in_flight"] for w in server.workers()))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/models/echo/infer", json={"never": "runs"}, timeout=0.5)
    status = lambda: server.client.get("/v1/status").json()  # noqa: E731
    wait_until(lambda: status()["models"]["echo"]["queued"] == 0, timeout=2)
    assert status()["workers"][0]["in_flight"] == 1  # the first request is still running
    assert busy.result().status_code == 200
    wait_until(lambda: status()["workers"][0]["in_flight"] == 0)
    assert status()["workers"][0]["requests"] == 2  # the warm-up and the slow one: never the third


def test_a_worker_that_stops_answering_healthz_is_stopped_and_replaced(server_factory):
    server = server_factory([ECHO], env={"VENVSERVE_HEALTH_INTERVAL_S": "1", "VENVSERVE_HEALTH_TIMEOUT_S": "1",
                                         "VENVSERVE_STOP_GRACE_S": "1"})
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]
    os.kill(pid, signal.SIGSTOP)  # alive, holding its memory, answering nothing
    try:
        wait_until(lambda: not pid_alive(pid), timeout=20)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert "stopped answering /healthz" in server.output()
    again = server.client.post("/v1/models/echo/infer", json={"n": 3})
    assert again.status_code == 200 and again.json()["pid"] != pid


MARKER_MODULE = """import os
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imported-by"), "a") as f:
    f.write("%d\\n" % os.getpid())
"""


def test_workers_do_not_import_from_the_gateways_directory_nor_see_its_keys(server_factory, tmp_path):
    cwd = tmp_path / "s0"  # the directory server_factory runs the first server in
    cwd.mkdir()
    # A queue.py that records who imported it, then stands aside for the real one.
    (cwd / "queue.py").write_text(MARKER_MODULE + (
        "import sys\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != here]\n"
        "del sys.modules['queue']\n"
        "import queue as _real\n"
        "sys.modules['queue'] = _real\n"))
    (cwd / "planted.py").write_text(MARKER_MODULE + "class Backend:\n    def load(self, options): pass\n"
                                    "    def infer(self, request): return {'planted': True}\n")
    catalog = [ECHO, {"id": "planted", "architecture": "planted:Backend"}]
    server = server_factory(catalog, env={"VENVSERVE_API_KEY": "k-1", "VENVSERVE_ADMIN_KEY": "k-2"})
    server.client.headers["Authorization"] = "Bearer k-2"
    answer = server.client.post("/v1/models/echo/infer", json={"n": 1})
    assert answer.status_code == 200, answer.text
    pid = answer.json()["pid"]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0] for entry in environ}
    assert b"VENVSERVE_API_KEY" not in names and b"VENVSERVE_ADMIN_KEY" not in names
    # A module that lies only in the gateway's working directory cannot be a worker's backend.
    error = assert_error(server.client.post("/v1/models/planted/infer", json={}), 503, "model_failed")
    assert "planted" in error["message"]
    marker = cwd / "imported-by"
    importers = {int(line) for line in marker.read_text().split()} if marker.exists() else set()
    assert importers <= {server.pid}  # the gateway itself may have; no worker did


def test_a_megabyte_line_of_output_neither_stalls_the_worker_nor_the_model(server_factory):
    server = server_factory([ECHO])
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]
    huge = "x" * 1_000_000
    for _ in range(3):  # each prints a traceback whose last line is a megabyte long
        assert_error(server.client.post("/v1/models/echo/infer", json={"raise": huge}), 500, "backend_error")
    again = server.client.post("/v1/models/echo/infer", json={"n": 1}).json()
    assert again["n"] == 1 and again["pid"] == pid  # the same worker serves on
    crashed = assert_error(server.client.post("/v1/models/echo/infer", json={"crash": True}), 502, "worker_crashed")
    assert "crashing as asked" in crashed["message"] and len(crashed["message"]) < 30_000
    assert server.client.post("/v1/models/echo/infer", json={"n": 2}).json()["pid"] != pid
    lines = server.client.get("/v1/models/echo/logs", params={"n": 1000}).json()["lines"]
    assert any(line["pid"] == pid and "crashing as asked" in line["line"] for line in lines)
    assert all(len(line["line"]) < 10_000 for line in lines)


def test_progress_bars_tracebacks_and_binary_output_never_stall_the_worker_or_the_gateway(server_factory):
    # A model printing `\r` progress bars for 30 s (no newline at all), then binary bytes and
    # 10,000 tracebacks, while its other slot and the gateway keep answering; then it crashes and respawns.
    server = server_factory([{**ECHO, "max_concurrency": 2}])
    pid = server.client.post("/v1/models/echo/infer", json={}).json()["pid"]
    noisy = {"noise": {"progress_s": 30, "tracebacks": 10_000, "binary_kb": 256}}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        loud = pool.submit(server.client.post, "/v1/models/echo/infer", json=noisy, timeout=120)
        served = 0
        while not loud.done():  # the other slot and the gateway's own routes answer all along
            assert server.client.post("/v1/models/echo/infer", json={"n": served}).json()["n"] == served
            assert server.client.get("/v1/status").status_code == 200
            served += 1
        answer = loud.result()
    assert answer.status_code == 200, answer.text
    assert answer.json()["pid"] == pid and answer.json()["progress_steps"] > 100
    assert served > 10
    assert server.client.post("/v1/models/echo/infer", json={"n": -1}).json()["pid"] == pid
    lines = server.client.get("/v1/models/echo/logs", params={"n": 2000}).json()["lines"]
    texts = [line["line"] for line in lines]
    assert len(texts) == 2000  # the ring is bounded (settings.log_lines) and full
    assert texts[-1] == "ValueError: noise 9999", texts[-3:]  # the newest lines are all there, in order
    crashed = assert_error(server.client.post("/v1/models/echo/infer", json={"crash": True}), 502, "worker_crashed")
    assert "crashing as asked" in crashed["message"]
    assert server.client.post("/v1/models/echo/infer", json={}).json()["pid"] != pid
