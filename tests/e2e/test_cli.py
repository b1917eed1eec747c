"""The `venvserve` command line, run for real as a subprocess: text on stdout,
progress and errors on stderr (uv's manners), exit codes, NO_COLOR."""

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from support import ROOT, free_port, pid_alive, render_lines, wait_until

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs the tesseract binary")

ANSI = "\x1b["


def cli(*args, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("VENVSERVE_") and k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "venvserve.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**base, **(env or {})})


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def data(tmp_path) -> list:
    return ["--data-dir", tmp_path / "data"]


@pytest.fixture
def scan(tmp_path) -> Path:
    path = tmp_path / "scan.png"
    render_lines(["Hello venvserve", "Invoice 2024"], path=path)
    return path


@needs_tesseract
def test_ocr_in_process_text_on_stdout_progress_on_stderr(tmp_path, data, scan):
    run = cli("ocr", scan, "--model", "tesseract", *data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert words(run.stdout) == "Hello venvserve Invoice 2024"
    assert "Built env tesseract in " in run.stderr
    assert "Loaded model tesseract in " in run.stderr
    assert f"OCR'd 1 page of {scan} with tesseract in " in run.stderr
    assert "Hello" not in run.stderr


@needs_tesseract
def test_ocr_several_files_headers_and_json_lines(tmp_path, data, scan):
    other = tmp_path / "other.png"
    render_lines(["Second file"], path=other)
    run = cli("ocr", scan, other, "-m", "tesseract", *data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"==> {scan} <==" in run.stdout and f"==> {other} <==" in run.stdout
    assert run.stdout.index("Invoice") < run.stdout.index(f"==> {other} <==") < run.stdout.index("Second file")
    assert "OCR'd 2 files (2 pages) in " in run.stderr

    run = cli("ocr", scan, other, "-m", "tesseract", "--json", *data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["file"] for r in results] == [str(scan), str(other)]
    assert words(results[1]["text"]) == "Second file"
    assert results[0]["model"] == "tesseract" and results[0]["pages"][0]["page"] == 1


@needs_tesseract
def test_ocr_a_bad_file_among_good_ones_fails_that_file_only(tmp_path, data, scan):
    bad = tmp_path / "anim.gif"
    bad.write_bytes(b"GIF89a" + b"\0" * 32)
    run = cli("ocr", bad, scan, "-m", "tesseract", *data, cwd=tmp_path)
    assert run.returncode == 1
    assert f"error: {bad}: " in run.stderr and "\n\nhint: " in run.stderr
    assert "Hello venvserve" in run.stdout
    assert "1 failed" in run.stderr


@needs_tesseract
def test_ocr_through_a_running_server(tmp_path, scan, server_factory):
    server = server_factory()
    run = cli("ocr", scan, "--model", "tesseract", "--server", server.url, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert words(run.stdout) == "Hello venvserve Invoice 2024"
    assert f"OCR'd 1 page of {scan} with tesseract in " in run.stderr
    # The server did the work: it now has a tesseract worker, the CLI built nothing.
    assert [w["model"] for w in server.workers()] == ["tesseract"]
    assert "Built env" not in run.stderr

    run = cli("ocr", scan, "--model", "nope", cwd=tmp_path, env={"VENVSERVE_URL": server.url})
    assert run.returncode == 1
    assert "error: unknown model 'nope'" in run.stderr and "hint: " in run.stderr


def test_ocr_server_unreachable(tmp_path, scan):
    from support import free_port

    run = cli("ocr", scan, "--server", f"http://127.0.0.1:{free_port()}", cwd=tmp_path, timeout=60)
    assert run.returncode == 1
    assert "error: cannot reach the server at " in run.stderr
    assert "hint: start one with `venvserve serve`" in run.stderr


def test_unknown_model_is_an_error_with_a_hint(tmp_path, data, scan):
    run = cli("ocr", scan, "--model", "tesserract", *data, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    error = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert "unknown model 'tesserract'" in lines[error]
    assert lines[error + 1] == ""
    assert lines[error + 2].startswith("hint: did you mean 'tesseract'?")
    assert "venvserve models list" in lines[error + 2]


def test_missing_file_is_an_error(tmp_path, data):
    run = cli("ocr", tmp_path / "nope.png", *data, cwd=tmp_path)
    assert run.returncode == 1
    assert f"error: {tmp_path / 'nope.png'} does not exist" in run.stderr and "hint: " in run.stderr


def test_envs_install_list_remove(tmp_path, data):
    def status(name: str) -> str:
        run = cli("envs", "list", *data, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        rows = [line.split() for line in run.stdout.splitlines()]
        assert rows[0] == ["name", "status", "python", "size", "path"]
        return next(row[1] for row in rows[1:] if row[0] == name)

    assert status("tesseract") == "not_installed"

    run = cli("envs", "install", "tesseract", *data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Built env tesseract in " in run.stderr
    assert run.stdout == ""
    assert status("tesseract") == "ready"

    listed = json.loads(cli("envs", "list", "--json", *data, cwd=tmp_path).stdout)
    entry = next(e for e in listed if e["name"] == "tesseract")
    assert entry["size_bytes"] > 0 and Path(entry["path"]).is_dir()

    again = cli("envs", "install", "tesseract", *data, cwd=tmp_path)
    assert again.returncode == 0 and "already ready" in again.stderr

    run = cli("envs", "remove", "tesseract", *data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Removed env tesseract" in run.stderr
    assert status("tesseract") == "not_installed"

    run = cli("envs", "remove", "tesseract", *data, cwd=tmp_path)
    assert run.returncode == 1
    assert "error: env 'tesseract' is not installed" in run.stderr and "hint: " in run.stderr


@pytest.fixture
def templates(tmp_path) -> Path:
    """Env templates: a copy of tesseract, one without a lock, one with a broken lock."""
    root = tmp_path / "envs"
    shutil.copytree(ROOT / "envs" / "tesseract", root / "tesseract")
    project = ('[project]\nname = "x"\nversion = "0"\nrequires-python = ">=3.9"\ndependencies = []\n'
               "[tool.uv]\npackage = false\n")
    for name in ("nolock", "badlock"):
        (root / name).mkdir()
        (root / name / "pyproject.toml").write_text(project)
    (root / "badlock" / "uv.lock").write_text("garbage = [\n")
    return root


def test_env_build_failures_show_the_uv_log_and_a_hint(tmp_path, data, templates):
    run = cli("envs", "install", "--all", "--envs-dir", templates, *data, cwd=tmp_path)
    assert run.returncode == 1
    assert "error: building env 'badlock' failed" in run.stderr
    assert "[uv log]" in run.stderr and "uv.lock" in run.stderr  # uv's own message
    assert "error: env template 'nolock' has no uv.lock" in run.stderr
    assert "hint: run `venvserve envs lock nolock`" in run.stderr
    assert "Built env tesseract in " in run.stderr  # the others still get built
    assert "Installed 1 env in " in run.stderr and "2 failed" in run.stderr


def test_envs_lock_writes_the_lock(tmp_path, data, templates):
    run = cli("envs", "lock", "nolock", "--envs-dir", templates, *data, cwd=tmp_path, env={"UV_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr
    assert (templates / "nolock" / "uv.lock").is_file()
    assert "Wrote " in run.stderr and run.stdout == ""
    run = cli("envs", "install", "nolock", "--envs-dir", templates, *data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_models_list(tmp_path, data):
    run = cli("models", "list", *data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines()]
    assert rows[0][:3] == ["id", "architecture", "env"]
    by_id = {row[0]: row for row in rows[1:] if row}
    assert {"rapidocr", "tesseract", "echo"} <= set(by_id)
    assert by_id["tesseract"][1:4] == ["tesseract", "tesseract", "not_installed"]
    models = json.loads(cli("models", "list", "--json", *data, cwd=tmp_path).stdout)
    echo = next(m for m in models if m["id"] == "echo")
    assert echo["available"] is True and echo["env"] == "(gateway)"


def test_models_list_says_why_a_model_is_unavailable(tmp_path, data):
    catalog = tmp_path / "models.json"
    catalog.write_text(json.dumps([{"id": "ghost", "architecture": "echo", "python_env": "nowhere"}]))
    run = cli("models", "list", "--json", "--catalog", catalog, "--envs-dir", ROOT / "envs", *data, cwd=tmp_path)
    ghost = json.loads(run.stdout)[0]
    assert ghost["available"] is False and "nowhere" in ghost["reason"]


@needs_tesseract
def test_doctor(tmp_path, data):
    run = cli("doctor", *data, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    tesseract = next(line for line in lines if line.split()[1:2] == ["tesseract"])
    assert tesseract.split()[0] == "ok" and "tesseract" in tesseract.split()[2]
    assert any(line.split()[:2] == ["ok", "uv"] for line in lines)
    assert any(line.split()[:3] == ["ok", "env", "tesseract"] for line in lines)
    assert "0 failures" in run.stderr


def test_doctor_fails_on_a_broken_catalog(tmp_path, data):
    catalog = tmp_path / "models.json"
    catalog.write_text("[{")
    run = cli("doctor", "--catalog", catalog, "--envs-dir", ROOT / "envs", *data, cwd=tmp_path, timeout=120)
    assert run.returncode == 1
    line = next(line for line in run.stdout.splitlines() if line.split()[1:2] == ["catalog"])
    assert line.startswith("fail")
    assert "hint: " in run.stdout


def test_no_color_means_no_escape_sequences(tmp_path, data, scan):
    commands = [("models", "list"), ("envs", "list"), ("doctor",), ("ocr", scan, "--model", "nope")]
    forced = cli("models", "list", *data, cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert ANSI in forced.stdout  # styles are on when forced, so the check below means something
    for command in commands:
        run = cli(*command, *data, cwd=tmp_path, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}, timeout=120)
        assert ANSI not in run.stdout + run.stderr, (command, run.stdout, run.stderr)


# -- a running server: banner, discovery, ps / load / unload / logs -----------------

ECHO = [{"id": "echo", "architecture": "echo"},
        {"id": "ghost", "architecture": "echo", "python_env": "nowhere"}]


def near(env: dict, server) -> dict:
    """The environment of a CLI that finds ``server`` by its data dir (no flag), never by the default port."""
    return {"VENVSERVE_DATA_DIR": str(server.data_dir), "VENVSERVE_PORT": str(free_port()), **env}


def test_serve_prints_a_banner_and_keeps_a_runtime_file_while_it_runs(server_factory):
    server = server_factory(ECHO)
    banner = server.output()
    assert f"listening on {server.url} (pid {server.pid})" in banner
    assert f"web page   {server.url}/" in banner and f"API docs   {server.url}/docs" in banner
    assert f"data dir   {server.data_dir}" in banner and "catalog    " in banner
    assert "1 of 2 available here" in banner
    lines = banner.splitlines()
    assert any(line.split()[:2] == ["ok", "echo"] for line in lines)
    ghost = next(line for line in lines if line.split()[:2] == ["no", "ghost"])
    assert "nowhere" in ghost  # why not, on its own line
    assert "budgets    " in banner and "queue 64 per model" in banner
    runtime = json.loads((server.data_dir / "server.json").read_text())
    assert runtime == {"pid": server.pid, "url": server.url, "started_at": runtime["started_at"]}
    server.stop()
    assert not (server.data_dir / "server.json").exists()


def test_ocr_goes_through_a_server_on_any_port_found_by_its_runtime_file(tmp_path, scan, server_factory):
    server = server_factory(ECHO)
    run = cli("ocr", scan, "-m", "echo", cwd=tmp_path, env=near({}, server))
    assert run.returncode == 0, run.stderr
    assert f"Using the server at {server.url} (pid {server.pid}, from {server.data_dir / 'server.json'}" in run.stderr
    assert [w["model"] for w in server.workers()] == ["echo"]  # the server did the work

    server.stop()  # no server now: the CLI says so and runs the model itself
    run = cli("ocr", scan, "-m", "echo", cwd=tmp_path, env=near({}, server))
    assert run.returncode == 0, run.stderr
    assert "Running the model in this process: no server is running for" in run.stderr
    assert "Loaded model echo in " in run.stderr


def test_ps_load_logs_unload_against_a_running_server(tmp_path, server_factory):
    server = server_factory(ECHO)
    env = near({"COLUMNS": "80"}, server)
    run = cli("ps", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "No model is loaded on " in run.stderr

    run = cli("load", "echo", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    [worker] = server.workers()
    assert f"Loaded model echo in " in run.stderr and f"(worker pid {worker['pid']})" in run.stderr

    run = cli("ps", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines()]
    assert rows[0][:4] == ["model", "state", "activity", "pid"]
    echo = next(row for row in rows if row[0] == "echo")
    assert echo[1:4] == ["loaded", "ready", str(worker["pid"])]
    assert all(len(line) <= 80 for line in run.stdout.splitlines())

    # What the worker prints is the model's log: a traceback with our marker in it.
    marker = "cli-log-marker-4711"
    assert server.client.post("/v1/models/echo/infer", json={"raise": marker}).status_code >= 400
    run = cli("logs", "echo", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert marker in run.stdout

    follow = subprocess.Popen([sys.executable, "-m", "venvserve.cli", "logs", "echo", "-f", "-n", "0"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **env})
    printed: list[str] = []

    def read() -> None:
        for line in follow.stdout:
            printed.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        later = "cli-follow-marker-815"

        def seen() -> bool:  # the follower may start after the first request: ask again until it shows
            server.client.post("/v1/models/echo/infer", json={"raise": later})
            return any(later in line for line in list(printed))

        assert wait_until(seen, timeout=30, interval=0.5)
    finally:
        follow.kill()
        follow.wait()

    run = cli("unload", "echo", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "Unloaded model echo in " in run.stderr
    assert wait_until(lambda: not pid_alive(worker["pid"]), timeout=30)

    run = cli("load", "ech", cwd=tmp_path, env=env)
    assert run.returncode == 1
    assert "error: unknown model 'ech'" in run.stderr
    assert "hint: did you mean 'echo'? `venvserve models list`" in run.stderr


def test_operator_commands_without_a_server_say_how_to_start_one(tmp_path):
    run = cli("ps", "--data-dir", tmp_path / "data", cwd=tmp_path)
    assert run.returncode == 1
    assert "error: no running server found" in run.stderr and "hint: start one with `venvserve serve`" in run.stderr


def test_models_list_in_80_columns_keeps_every_columns_content(tmp_path, data):
    models = json.loads(cli("models", "list", "--json", *data, cwd=tmp_path).stdout)
    run = cli("models", "list", *data, cwd=tmp_path, env={"COLUMNS": "80"})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert lines[-1].startswith("default: ")
    names = ["id", "architecture", "env", "env status", "device", "available", "reason"]
    header, body, reasons = lines[0], [], []
    for line in lines[1:-1]:  # a long last column goes under its row: "  reason: ..." and its indented lines
        if line.startswith("  reason: ") or (reasons and reasons[-1] is not None and line.startswith(" " * 10)):
            reasons.append(line.strip().removeprefix("reason: "))
        else:
            body.append(line)
            reasons.append(None)
    starts, at = [], 0
    for name in names:
        if name not in header[at:]:
            break
        at = header.index(name, at)
        starts.append(at)
        at += len(name)
    shown = names[:len(starts)]
    assert shown[:6] == names[:6], header
    columns = {name: "".join(line[a:b].strip() for line in body)
               for name, a, b in zip(shown, starts, starts[1:] + [None])}
    for name, column in columns.items():  # each cell, wrapped or not, is there in order
        at = 0
        for model in models:
            cell = {"id": model["id"], "architecture": model["architecture"], "env": model["env"],
                    "env status": model["env_status"] or "-", "device": model["device"],
                    "available": "yes" if model["available"] else "no", "reason": model["reason"] or ""}[name]
            found = column.find("".join(cell.split()), at)
            assert found >= 0, (name, cell, run.stdout)
            at = found + len("".join(cell.split()))
    stacked = " ".join(r for r in reasons if r is not None)
    for model in models:
        if model["reason"] and "reason" not in columns:
            assert " ".join(model["reason"].split()) in stacked, (model["id"], run.stdout)


def test_help_lists_ray_and_shows_the_defaults(tmp_path):
    run = cli("--help", cwd=tmp_path)
    assert run.returncode == 0
    assert any(line.split()[:1] == ["ray"] for line in run.stdout.splitlines())
    run = cli("serve", "--help", cwd=tmp_path, env={"COLUMNS": "100"})
    assert "<bool>" not in run.stdout
    assert "[default: 64]" in run.stdout and "[default: 600]" in run.stdout and "[default: 50]" in run.stdout
    run = cli("ray", "--help", cwd=tmp_path)
    assert run.returncode == 0 and "Usage: venvserve ray " in run.stdout
    assert "deploy" in run.stdout and "plan" in run.stdout


def test_a_bad_setting_stops_serve_naming_the_variable(tmp_path, data):
    run = cli("serve", "--port", free_port(), *data, cwd=tmp_path, env={"VENVSERVE_WORKER_TRANSPORT": "tcpp"},
              timeout=60)
    assert run.returncode == 2
    assert "error: " in run.stderr and "VENVSERVE_WORKER_TRANSPORT" in run.stderr and "tcpp" in run.stderr
    assert "Traceback" not in run.stderr


def test_operator_commands_use_the_admin_key(tmp_path, server_factory):
    server = server_factory(ECHO, args=("--admin-key", "cli-admin-key"))
    env = near({}, server)
    run = cli("load", "echo", cwd=tmp_path, env=env)
    assert run.returncode == 1 and "error: " in run.stderr and "hint: " in run.stderr
    assert server.workers() == []
    run = cli("load", "echo", cwd=tmp_path, env={**env, "VENVSERVE_ADMIN_KEY": "cli-admin-key"})
    assert run.returncode == 0, run.stderr
    assert [w["model"] for w in server.workers()] == ["echo"]
