"""Env lifecycle with real uv builds: one build for many first requests, statuses, outdated, external."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support import ROOT, start_server

PROBE = {"id": "probe", "architecture": "echo", "python_env": "tesseract"}


def gated_template(tmp: Path) -> tuple[Path, Path]:
    """The tesseract template plus a post_install.sh that waits for a gate file (at most a minute):
    the build lasts until the test has seen every concurrent request arrive, then the test opens it."""
    envs, gate = tmp / "envs", tmp / "gate"
    shutil.copytree(ROOT / "envs" / "tesseract", envs / "tesseract")
    (envs / "tesseract" / "post_install.sh").write_text(
        f'#!/bin/bash\nfor i in $(seq 1200); do [ -e "{gate}" ] && exit 0; sleep 0.05; done\n'
        'echo "the test never opened the gate" >&2\nexit 1\n')
    return envs, gate


async def open_gate_when_queued(gate: Path, counts: dict[str, int]) -> None:
    """Open the gate once each server has its requests queued for the model (bounded)."""
    async with httpx.AsyncClient(timeout=30) as client:
        async def queued(url: str) -> int:
            return (await client.get(url + "/v1/status")).json()["models"]["probe"].get("queued", 0)

        async def all_queued() -> None:
            while [await queued(url) for url in counts] != list(counts.values()):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(all_queued(), 30)
    gate.touch()


def build_headers(data_dir: Path, name: str = "tesseract") -> list[str]:
    log = (data_dir / "envs" / name / "install.log").read_text()
    return re.findall(r"^=== build \S+ started.*$", log, re.M)


def builds_on_disk(data_dir: Path, name: str = "tesseract") -> list[Path]:
    return sorted(p for p in (data_dir / "envs" / name).iterdir() if p.is_dir())


async def fire(url: str, model: str, count: int, tag: str = "") -> list[tuple[float, httpx.Response]]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def one(i: int):
            sent = time.monotonic()
            return sent, await client.post(f"/v1/models/{model}/infer", json={"n": i, "tag": tag})

        return await asyncio.gather(*(one(i) for i in range(count)))


def check_answers(results, tag: str = "") -> set[int]:
    pids = set()
    for i, (_, r) in enumerate(results):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["n"] == i and body["tag"] == tag, body
        pids.add(body["pid"])
    return pids


def test_fifty_concurrent_first_requests_build_once_and_spawn_once(server_factory, tmp_path):
    envs, gate = gated_template(tmp_path)
    server = server_factory([PROBE], envs_dir=envs)
    assert server.client.get("/v1/envs/tesseract").json()["status"] == "not_installed"
    assert server.client.get("/v1/status").json()["models"]["probe"].get("spawns", 0) == 0

    async def run():
        requests = asyncio.create_task(fire(server.url, "probe", 50))
        # While the build runs (it waits for the gate), the env says so.
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            async def installing():
                while True:
                    status = (await client.get("/v1/envs/tesseract")).json()["status"]
                    if status != "not_installed":
                        return status
                    await asyncio.sleep(0.02)
            seen = await asyncio.wait_for(installing(), 10)
        await open_gate_when_queued(gate, {server.url: 50})  # every request arrived during the build
        return seen, await requests

    seen, results = asyncio.run(run())
    assert seen == "installing"
    pids = check_answers(results)
    assert len(pids) == 1, pids

    env = server.client.get("/v1/envs/tesseract").json()
    assert env["status"] == "ready" and env["builds"] == 1, env
    assert len(build_headers(server.data_dir)) == 1
    log = (server.data_dir / "envs" / "tesseract" / "install.log").read_text()
    assert log.count("Creating virtual environment") == 1
    assert len(builds_on_disk(server.data_dir)) == 1
    status = server.client.get("/v1/status").json()
    assert status["models"]["probe"]["spawns"] == 1, status["models"]["probe"]
    workers = [w for w in status["workers"] if w["model"] == "probe"]
    assert [w["pid"] for w in workers] == list(pids)
    assert Path(workers[0]["python"]) == Path(env["path"]) / "bin" / "python"


def test_two_gateways_sharing_a_data_dir_build_once(server_factory, tmp_path):
    """The file lock: concurrent first requests on two processes, one build."""
    envs, gate = gated_template(tmp_path)
    data = tmp_path / "shared"
    a = server_factory([PROBE], envs_dir=envs, data_dir=data)
    b = server_factory([PROBE], envs_dir=envs, data_dir=data)

    async def run():
        both = asyncio.gather(fire(a.url, "probe", 10, "a"), fire(b.url, "probe", 10, "b"))
        await open_gate_when_queued(gate, {a.url: 10, b.url: 10})  # both wait on one build
        return await both

    ra, rb = asyncio.run(run())
    pa, pb = check_answers(ra, "a"), check_answers(rb, "b")
    assert len(pa) == len(pb) == 1 and pa != pb  # one worker per gateway
    assert len(build_headers(data)) == 1
    assert a.client.get("/v1/envs/tesseract").json()["builds"] == 1
    assert b.client.get("/v1/envs/tesseract").json()["status"] == "ready"
    assert a.workers()[0]["python"] == b.workers()[0]["python"]


def test_install_moves_not_installed_to_ready(server_factory):
    server = server_factory([PROBE, {"id": "tesseract", "architecture": "tesseract", "python_env": "tesseract"}])
    env = server.client.get("/v1/envs/tesseract").json()
    assert env["status"] == "not_installed" and env.get("python_version") is None, env
    listed = {e["name"]: e for e in server.client.get("/v1/envs").json()["data"]}
    assert listed["tesseract"]["status"] == "not_installed"
    assert {"rapidocr", "rapidocr-v4"} <= set(listed)  # every template is listed, built or not
    model = server.client.get("/v1/models/tesseract").json()
    assert model["env_status"] == "not_installed"

    r = server.client.post("/v1/envs/tesseract/install")
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["status"] == "ready", env
    assert env["builds"] == 1
    assert re.match(r"^3\.\d+", env["python_version"]), env
    assert "pytesseract" in env["packages"] and "pillow" in env["packages"], env["packages"]
    assert env["size_bytes"] > 0
    assert any("ready" in line for line in env["log_tail"]), env["log_tail"]
    ready_marker = server.data_dir / "envs" / "tesseract" / f"{env['fingerprint']}.ready"
    assert ready_marker.is_file()
    assert Path(env["path"]) == server.data_dir / "envs" / "tesseract" / env["fingerprint"]

    # Installing a ready env is a no-op; the model now reports it ready.
    again = server.client.post("/v1/envs/tesseract/install").json()
    assert again["status"] == "ready" and again["builds"] == 1 and again["fingerprint"] == env["fingerprint"]
    assert server.client.get("/v1/models/tesseract").json()["env_status"] == "ready"
    # No worker was started by an install.
    assert server.workers() == []


def test_changed_template_is_outdated_and_rebuilt_beside_the_old(server_factory, tmp_path):
    envs = tmp_path / "envs"
    shutil.copytree(ROOT / "envs" / "tesseract", envs / "tesseract")
    server = server_factory([PROBE], envs_dir=envs)
    first = server.client.post("/v1/envs/tesseract/install").json()
    assert first["status"] == "ready"
    old = server.client.post("/v1/models/probe/infer", json={}).json()
    assert old["python"]["executable"] == str(Path(first["path"]) / "bin" / "python")

    with open(envs / "tesseract" / "pyproject.toml", "a") as f:
        f.write("\n# a template edit: any change of any file changes the fingerprint\n")
    env = server.client.get("/v1/envs/tesseract").json()
    assert env["status"] == "outdated", env
    assert env["fingerprint"] != first["fingerprint"]
    assert env["path"] == first["path"]  # the old build is what a worker would use now

    second = server.client.post("/v1/envs/tesseract/install").json()
    assert second["status"] == "ready" and second["fingerprint"] == env["fingerprint"], second
    assert second["builds"] == 2 and len(build_headers(server.data_dir)) == 2
    # The running worker keeps its build (so that build stays on disk) ...
    assert Path(first["path"]).is_dir()
    same = server.client.post("/v1/models/probe/infer", json={}).json()
    assert same["pid"] == old["pid"] and same["python"] == old["python"]
    # ... until it is restarted: then it runs from the new build.
    assert server.client.post("/v1/models/probe/unload").status_code == 200
    new = server.client.post("/v1/models/probe/infer", json={}).json()
    assert new["pid"] != old["pid"]
    assert new["python"]["executable"] == str(Path(second["path"]) / "bin" / "python")


def test_hand_made_venv_is_external_and_used_as_is(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    venv = cwd / ".venv-tesseract"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    hand = cwd / ".venv-handmade"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(hand)], check=True, timeout=60)
    catalog = [PROBE, {"id": "hand", "architecture": "echo", "python_env": "handmade"}]
    # start_server runs the server with cwd = the tmp dir it is given.
    server = start_server(cwd, catalog)
    try:
        env = server.client.get("/v1/envs/tesseract").json()
        assert env["status"] == "external" and Path(env["path"]) == venv, env
        listed = {e["name"]: e["status"] for e in server.client.get("/v1/envs").json()["data"]}
        assert listed["tesseract"] == "external" and listed["handmade"] == "external", listed

        for model, path in (("probe", venv), ("hand", hand)):
            r = server.client.post(f"/v1/models/{model}/infer", json={"packages": ["pytesseract"]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["python"]["executable"] == str(path / "bin" / "python"), body
            # Used as is: nothing was installed into it (the template would bring pytesseract).
            assert body["packages"] == {"pytesseract": None}

        # An install request does not build over an external env.
        assert server.client.post("/v1/envs/tesseract/install").json()["status"] == "external"
        assert not (server.data_dir / "envs" / "tesseract").exists() or not build_headers(server.data_dir)
    finally:
        server.stop()


def test_a_broken_env_is_failed_with_the_reason_and_install_repairs_it(tmp_path):
    """Integrity: a file deleted from a built env's site-packages makes it failed, not ready."""
    def cli(*args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("VENVSERVE_")}
        return subprocess.run([sys.executable, "-m", "venvserve.cli", *map(str, args), "--data-dir", data],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)

    def listed() -> dict:
        return next(e for e in json.loads(cli("envs", "list", "--json").stdout) if e["name"] == "tesseract")

    data = tmp_path / "data"
    run = cli("envs", "install", "tesseract")
    assert run.returncode == 0, run.stderr
    run = cli("envs", "verify", "tesseract")
    assert run.returncode == 0, run.stderr
    assert "Verified env tesseract: " in run.stderr

    venv = Path(listed()["path"])
    [victim] = venv.glob("lib/python*/site-packages/pytesseract/pytesseract.py")
    victim.unlink()
    assert listed()["status"] == "ready"  # nothing looked yet
    run = cli("envs", "verify", "tesseract")
    assert run.returncode == 1
    assert "error: env 'tesseract' is broken: " in run.stderr and "pytesseract/pytesseract.py is missing" in run.stderr
    assert "hint: `venvserve envs install tesseract` rebuilds it" in run.stderr
    entry = listed()
    assert entry["status"] == "failed" and "pytesseract/pytesseract.py is missing" in entry["error"], entry

    run = cli("envs", "install", "tesseract")
    assert run.returncode == 0, run.stderr
    assert "Built env tesseract in " in run.stderr
    assert listed()["status"] == "ready"
    assert cli("envs", "verify", "tesseract").returncode == 0
    assert next(venv.parent.glob(f"{venv.name}/lib/python*/site-packages/pytesseract/pytesseract.py")).is_file()


def test_build_timeout_stops_the_build_and_everything_it_started(tmp_path, monkeypatch):
    """build_timeout_s bounds the build itself: its process group is killed, the env is failed with why."""
    from support import pid_alive, wait_until
    from venvserve.envs import EnvManager, EnvState
    from venvserve.errors import EnvBuildFailed

    envs = tmp_path / "envs"
    shutil.copytree(ROOT / "envs" / "tesseract", envs / "tesseract")
    (envs / "tesseract" / "post_install.sh").write_text('#!/bin/bash\nsleep 300 &\necho $! > "$SLEEPER"\nwait\n')
    sleeper = tmp_path / "sleeper.pid"
    monkeypatch.setenv("SLEEPER", str(sleeper))
    manager = EnvManager(envs, tmp_path / "data", build_timeout_s=15)

    try:
        asyncio.run(manager.ensure("tesseract"))
    except EnvBuildFailed as exc:
        message = exc.message
    else:
        raise AssertionError("the build outlived its time limit")
    assert "did not finish within the build time limit" in message and "post_install.sh" in message
    pid = int(sleeper.read_text())
    wait_until(lambda: not pid_alive(pid), timeout=10)  # the step's children went with it
    status = manager.status("tesseract")
    assert status.state is EnvState.FAILED and "build_timeout_s" in status.error


def test_a_boot_that_fails_in_a_broken_env_fails_the_env_and_install_repairs_it(server_factory):
    """The quick check runs when a worker fails to boot: the model fails once, saying how to repair."""
    # A backend class from the env itself: its boot imports Pillow from the env's site-packages.
    pillow = {"id": "pillow", "architecture": "PIL.ImageFile:ImageFile", "python_env": "tesseract"}
    server = server_factory([PROBE, pillow])
    env = server.client.post("/v1/envs/tesseract/install").json()
    assert env["status"] == "ready", env
    [victim] = Path(env["path"]).glob("lib/python*/site-packages/PIL/ImageFile.py")
    victim.unlink()

    r = server.client.post("/v1/models/pillow/load")
    assert r.status_code == 503, r.text
    model = server.client.get("/v1/models/pillow").json()
    assert model["state"] == "failed" and "env 'tesseract' is broken" in model["failed_reason"], model
    assert "PIL/ImageFile.py is missing" in model["failed_reason"] and "envs install tesseract" in model["failed_reason"]
    assert model["spawns"] == 1  # a broken env fails once; no retries with backoff
    env = server.client.get("/v1/envs/tesseract").json()
    assert env["status"] == "failed" and "PIL/ImageFile.py is missing" in env["error"], env

    env = server.client.post("/v1/envs/tesseract/install").json()
    assert env["status"] == "ready", env
    assert next(Path(env["path"]).glob("lib/python*/site-packages/PIL/ImageFile.py")).is_file()
    r = server.client.post("/v1/models/probe/infer", json={"packages": ["pillow"]})
    assert r.status_code == 200 and r.json()["packages"]["pillow"], r.text
