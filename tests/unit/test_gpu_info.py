"""GPU facts without NVML's Python binding: parsed from `nvidia-smi` (a stand-in script here,
since this machine has no GPU; the real binary prints the same CSV)."""

import stat

import pytest

from venvserve.system import gpu

FAKE_SMI = """#!/bin/sh
case "$*" in
  *--query-gpu=memory.total*) printf '143771\\n' ;;
  *--query-gpu=memory.used*) printf '20517\\n' ;;
  *--query-compute-apps=pid,used_memory*) printf '4242, 20480\\n4243, 16\\n4242, 4\\n' ;;
esac
"""


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    script = tmp_path / "nvidia-smi"
    script.write_text(FAKE_SMI)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(gpu, "_nvml", lambda: None)
    gpu.available.cache_clear()
    gpu.total_memory_mb.cache_clear()
    yield
    gpu.available.cache_clear()
    gpu.total_memory_mb.cache_clear()


def test_memory_and_processes_come_from_nvidia_smi(fake_smi):
    assert gpu.available() is True
    assert gpu.total_memory_mb() == 143771
    assert gpu.used_memory_mb() == 20517
    assert gpu.process_memory_mb() == {4242: 20484, 4243: 16}


def test_no_gpu_and_no_tools_means_none(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(gpu, "_nvml", lambda: None)
    gpu.available.cache_clear()
    gpu.total_memory_mb.cache_clear()
    try:
        assert gpu.available() is False
        assert gpu.process_memory_mb() == {}
    finally:
        gpu.available.cache_clear()
        gpu.total_memory_mb.cache_clear()


# -- sampling: off the event loop, cached, written only on change -------------------------------


def test_memory_is_sampled_in_a_thread_and_measured_json_is_written_only_when_figures_change(
        tmp_path, monkeypatch):
    import asyncio
    import threading
    from types import SimpleNamespace

    from venvserve.settings import Settings
    from venvserve.workers import housekeeping

    gate, figures, writes = threading.Event(), {"rss": 100.0}, []

    def blocking_measure(pids, with_gpu):
        # Blocks until the event loop sets the gate: were it run on the loop, nothing could.
        assert gate.wait(5)
        return {pid: (figures["rss"], None) for pid in pids}

    monkeypatch.setattr(housekeeping, "measure", blocking_measure)
    worker = SimpleNamespace(pid=4242, model="m", process=SimpleNamespace(info={"rss_mb": 7.0}))
    host = SimpleNamespace(settings=Settings(), actors={"m": SimpleNamespace(routable=lambda: [worker])})
    keeper = housekeeping.Housekeeping(host, tmp_path / "measured.json")
    keeper._write_measured = writes.append
    assert keeper.rss_mb(worker) == 7.0  # before any sample: the worker's own ready figure

    async def go():
        sampling = asyncio.ensure_future(keeper.sample())
        await asyncio.sleep(0.01)
        gate.set()
        await sampling
        await keeper.sample()  # the same figures: nothing to write
        figures["rss"] = 180.0
        await keeper.sample()

    asyncio.run(go())
    assert len(writes) == 2
    assert keeper.measured["m"]["rss_mb"] == 180 and keeper.rss_mb(worker) == 180.0


def test_status_views_read_the_cache_and_never_ask_the_tools(tmp_path, monkeypatch):
    import asyncio
    from types import SimpleNamespace

    from venvserve.catalog import ModelSpec
    from venvserve.settings import Settings
    from venvserve.system import processes
    from venvserve.workers import supervisor as supervision
    from venvserve.workers.state import WorkerState
    from venvserve.workers.worker import Worker

    def never(*args, **kwargs):
        raise AssertionError("a view asked the system")

    for module, name in ((gpu, "process_memory_mb"), (gpu, "used_memory_mb"), (processes, "rss_mb")):
        monkeypatch.setattr(module, name, never)
    settings = Settings(data_dir=tmp_path, gpu_memory_budget_mb=0)
    spec = ModelSpec(id="m", architecture="echo", device="cuda")

    async def go():
        sup = supervision.Supervisor(settings, SimpleNamespace(get=lambda i: spec), None, tmp_path)
        actor = sup.actors["m"] = supervision.ModelActor(spec, sup)
        process = SimpleNamespace(pid=4242, port=None, ready_ms=5.0, info={"load_ms": 1.0, "rss_mb": 9.0},
                                  spec=SimpleNamespace(socket=tmp_path / "w.sock"))
        actor.workers.append(Worker(1, "m", process, "python", None, None, state=WorkerState.READY))
        sup.housekeeping.memory = {4242: (120.0, 2048)}
        [view] = sup.worker_views()
        assert (view["rss_mb"], view["gpu_mb"], view["state"]) == (120.0, 2048, "ready")
        assert sup.model_state("m")["state"] == "loaded"
        assert sup.budget_view()["loaded_models"] == 1

    asyncio.run(go())
