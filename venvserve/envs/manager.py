"""EnvManager: template → venv in the data dir, built on demand with uv.

Layout of ``DATA/envs/NAME/``::

    .lock            flock: one build at a time, across processes
    install.log      every build's uv output, appended
    <fp>/            the venv built from the template whose fingerprint is fp
    <fp>.ready       completion marker, written last (atomically)
    <fp>.failed      the last failed build of fp (or why its files no longer match), with its log tail

A venv without its marker is half-built: it is never used and is removed
before the next build. A ready venv whose files no longer match what uv
installed (integrity.py) loses its marker and becomes failed with the reason;
the next build replaces it.
"""

import asyncio
import enum
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import EnvBuildFailed, NotFound, VenvserveError
from ..names import is_env_name
from . import integrity, venvinfo
from .build import run_step, uv_binary, uv_env
from .filelock import FileLock
from .template import Template

log = logging.getLogger("venvserve.envs")


class EnvState(str, enum.Enum):
    NOT_INSTALLED = "not_installed"
    INSTALLING = "installing"
    READY = "ready"
    OUTDATED = "outdated"
    FAILED = "failed"
    EXTERNAL = "external"


@dataclass
class EnvStatus:
    name: str
    state: EnvState
    path: Path | None = None  # the venv a worker would use now
    fingerprint: str | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def python(self) -> Path | None:
        return venvinfo.python_of(self.path) if self.path else None


class EnvManager:
    def __init__(self, templates_dir: Path, data_dir: Path, workdir: Path | None = None,
                 in_use: Callable[[], set[Path]] = lambda: set(), build_timeout_s: float = 3600):
        self.templates_dir = Path(templates_dir)
        self.root = Path(data_dir) / "envs"
        self.workdir = Path(workdir or Path.cwd())
        self.in_use = in_use
        self.build_timeout_s = build_timeout_s
        self._locks: dict[str, asyncio.Lock] = {}
        self._building: set[str] = set()
        self.listeners: dict[str, list[asyncio.Queue]] = {}
        self.on_build: Callable[[str, float, bool], None] | None = None  # one hook (kept for old callers)
        self._build_listeners: list[Callable[[str, float, bool], None]] = []

    # -- lookup -------------------------------------------------------------

    def names(self) -> list[str]:
        if not self.templates_dir.is_dir():
            return []
        return sorted(p.name for p in self.templates_dir.iterdir()
                      if (p / "pyproject.toml").is_file() and is_env_name(p.name))

    def template(self, name: str) -> Template:
        if not is_env_name(name):
            raise NotFound(f"invalid env name {name!r}", code="env_not_found")
        path = self.templates_dir / name
        if not (path / "pyproject.toml").is_file() and not self.external(name):
            # No server path in the message: it reaches API clients (the operator knows --envs-dir).
            raise NotFound(f"no env template {name!r} in the server's envs folder", code="env_not_found",
                           hint=f"create envs/{name}/pyproject.toml there (see --envs-dir), or a hand-made .venv-{name}/")
        return Template(name, path)

    def external(self, name: str) -> Path | None:
        """A hand-made ``.venv-NAME/`` in the working directory, used as is."""
        venv = self.workdir / f".venv-{name}"
        return venv if venvinfo.python_of(venv).exists() else None

    def _dir(self, name: str) -> Path:
        return self.root / name

    def status(self, name: str) -> EnvStatus:
        external = self.external(name)
        if external:
            return EnvStatus(name, EnvState.EXTERNAL, external)
        template = self.template(name)
        fp = template.fingerprint()
        base = self._dir(name)
        venv = base / fp
        if (base / f"{fp}.ready").exists() and venvinfo.python_of(venv).exists():
            return EnvStatus(name, EnvState.READY, venv, fp)
        if name in self._building or (base.is_dir() and FileLock(base / ".lock").is_held_elsewhere()):
            return EnvStatus(name, EnvState.INSTALLING, None, fp)
        failed = base / f"{fp}.failed"
        if failed.exists():
            info = json.loads(failed.read_text())
            return EnvStatus(name, EnvState.FAILED, None, fp, error=info.get("error"))
        old = self._ready_builds(name)
        if old:
            return EnvStatus(name, EnvState.OUTDATED, old[-1], fp)
        return EnvStatus(name, EnvState.NOT_INSTALLED, None, fp)

    async def status_async(self, name: str) -> EnvStatus:
        """status() off the event loop (a template's first fingerprint reads its files)."""
        return await asyncio.to_thread(self.status, name)

    def _ready_builds(self, name: str) -> list[Path]:
        base = self._dir(name)
        if not base.is_dir():
            return []
        markers = sorted(base.glob("*.ready"), key=lambda p: p.stat().st_mtime)
        return [m.with_suffix("") for m in markers if venvinfo.python_of(m.with_suffix("")).exists()]

    def describe(self, name: str, full: bool = False) -> dict:
        """The API's view of one env."""
        st = self.status(name)
        out = {"name": name, "status": st.state.value, "fingerprint": st.fingerprint,
               "path": str(st.path) if st.path else None, "error": st.error}
        if st.state is not EnvState.EXTERNAL:
            template = self.template(name)
            out["requires_python"] = template.requires_python()
        if st.path:
            out["python_version"] = venvinfo.python_version(st.path)
            if full:
                out["size_bytes"] = venvinfo.size_bytes(st.path)
                out["packages"] = venvinfo.packages(st.path)
        if full:
            out["builds"] = self.build_count(name)
            out["log_tail"] = venvinfo.tail(self._dir(name) / "install.log")
        return out

    def build_count(self, name: str) -> int:
        return sum(1 for line in venvinfo.tail(self._dir(name) / "install.log", 100000)
                   if line.startswith("=== build ") and " started " in line)

    # -- building -----------------------------------------------------------

    async def ensure(self, name: str) -> EnvStatus:
        """Return a ready (or external) env, building it first if needed.

        Any number of concurrent callers, in this process or others, cause
        one build: the in-process lock coalesces them here, the file lock
        across processes.
        """
        st = self.status(name)
        if st.state in (EnvState.READY, EnvState.EXTERNAL):
            return st
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            st = self.status(name)
            if st.state in (EnvState.READY, EnvState.EXTERNAL):
                return st
            return await self._build(name)

    async def _build(self, name: str) -> EnvStatus:
        template = self.template(name)
        base = self._dir(name)
        base.mkdir(parents=True, exist_ok=True)
        flock = FileLock(base / ".lock")
        self._building.add(name)
        try:
            await flock.acquire(self.build_timeout_s)
            try:
                fp = template.fingerprint()
                if (base / f"{fp}.ready").exists():  # another process built it meanwhile
                    return self.status(name)
                return await self._build_locked(template, fp, time.monotonic() + self.build_timeout_s)
            finally:
                flock.release()
        finally:
            self._building.discard(name)

    async def _build_locked(self, template: Template, fp: str, deadline: float) -> EnvStatus:
        name, base = template.name, self._dir(template.name)
        venv = base / fp
        if venv.exists():  # a half-built leftover: never reuse it
            shutil.rmtree(venv, ignore_errors=True)
        (base / f"{fp}.failed").unlink(missing_ok=True)
        if not template.has_lock:
            raise EnvBuildFailed(f"env template {name!r} has no uv.lock",
                                 hint=f"run `venvserve envs lock {name}` and commit the lock")
        started = time.monotonic()
        log.info("env %s: building env from %s (fingerprint %s)", name, template.path, fp)
        logfile = base / "install.log"
        with open(logfile, "a") as out:
            out.write(f"=== build {fp} started {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        env = uv_env(venv)
        cmd = [uv_binary(), "sync", "--frozen", "--no-install-project", "--project", str(template.path)]
        publish = lambda line: self._publish(name, line)  # noqa: E731
        ok, detail = await run_step(name, cmd, env, logfile, deadline, publish)
        if ok and template.post_install:
            env["VIRTUAL_ENV"] = str(venv)
            env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            ok, detail = await run_step(name, ["bash", str(template.post_install)], env, logfile, deadline,
                                        publish, cwd=template.path)
        seconds = time.monotonic() - started
        for listener in [*self._build_listeners, *([self.on_build] if self.on_build else [])]:
            listener(name, seconds, ok)
        if not ok:
            tail = venvinfo.tail(logfile, 20)
            (base / f"{fp}.failed").write_text(json.dumps({"error": detail, "log_tail": tail}))
            shutil.rmtree(venv, ignore_errors=True)
            log.error("env %s: build failed after %.1fs: %s", name, seconds, detail)
            raise EnvBuildFailed(f"building env {name!r} failed: {detail}",
                                 hint=f"see {logfile}; last lines: " + " | ".join(tail[-5:]))
        marker = {"fingerprint": fp, "built_at": time.time(), "seconds": round(seconds, 3),
                  "python_version": venvinfo.python_version(venv),
                  "drift": await asyncio.to_thread(integrity.drift, venv)}
        tmp = base / f"{fp}.ready.tmp"
        tmp.write_text(json.dumps(marker))
        os.replace(tmp, base / f"{fp}.ready")  # the marker is written last
        with open(logfile, "a") as out:
            out.write(f"=== build {fp} ready in {seconds:.2f}s\n")
        log.info("env %s: ready in %.2fs (python %s)", name, seconds, marker["python_version"])
        self.remove_unused(name, keep=venv)
        return self.status(name)

    def subscribe(self, listener: Callable[[str, float, bool], None]) -> Callable[[], None]:
        """Call ``listener(name, seconds, ok)`` after every build; returns the way to stop."""
        self._build_listeners.append(listener)
        return lambda: self._build_listeners.remove(listener)

    def _publish(self, name: str, line: str) -> None:
        for queue in self.listeners.get(name, []):
            queue.put_nowait(line)

    # -- integrity ----------------------------------------------------------

    def verify(self, name: str, full: bool = False) -> integrity.Report | None:
        """Check a ready env's files against uv's RECORDs (sizes; hashes too when ``full``).

        A mismatch takes the env out of service: its ready marker goes, a
        ``.failed`` record says why, and the next ensure() rebuilds it.
        None when there is no ready build to check (or a hand-made env).
        """
        st = self.status(name)
        if st.state not in (EnvState.READY, EnvState.OUTDATED) or st.path is None:
            return None
        base, fp = self._dir(name), st.path.name
        try:
            marker = json.loads((base / f"{fp}.ready").read_text())
        except (OSError, ValueError):
            marker = {}
        report = integrity.check(st.path, full=full, ignore=frozenset(marker.get("drift", ())))
        if not report.ok:
            reason = report.reason()
            log.error("env %s: %s", name, reason)
            (base / f"{fp}.failed").write_text(json.dumps({"error": reason, "log_tail": []}))
            (base / f"{fp}.ready").unlink(missing_ok=True)
            with open(base / "install.log", "a") as out:
                out.write(f"=== build {fp} broken: {reason}\n")
        return report

    async def verify_async(self, name: str, full: bool = False) -> integrity.Report | None:
        """verify() off the event loop: what the supervisor calls when a worker of this env fails to boot."""
        return await asyncio.to_thread(self.verify, name, full)

    # -- cleaning -----------------------------------------------------------

    def remove_unused(self, name: str, keep: Path | None = None) -> None:
        """Remove builds of ``name`` that are not current and no worker uses."""
        base = self._dir(name)
        used = {p.resolve() for p in self.in_use()}
        for child in base.iterdir() if base.is_dir() else []:
            if not child.is_dir() or child == keep:
                continue
            if child.resolve() in used:
                continue
            (base / f"{child.name}.ready").unlink(missing_ok=True)
            shutil.rmtree(child, ignore_errors=True)

    def clean_half_built(self) -> list[Path]:
        """At start-up: remove venvs without a marker whose build nobody holds."""
        removed = []
        for base in self.root.iterdir() if self.root.is_dir() else []:
            if not base.is_dir():
                continue
            flock = FileLock(base / ".lock")
            if not flock.try_acquire():
                continue  # another process is building it now
            try:
                for child in base.iterdir():
                    if child.is_dir() and not (base / f"{child.name}.ready").exists():
                        shutil.rmtree(child, ignore_errors=True)
                        removed.append(child)
                for tmp in base.glob("*.tmp"):
                    tmp.unlink(missing_ok=True)
            finally:
                flock.release()
        return removed

    async def remove(self, name: str) -> None:
        self.template(name)
        base = self._dir(name)
        used = {p.resolve() for p in self.in_use()}
        if any(p.resolve().parent == base.resolve() for p in used):
            raise VenvserveError(f"env {name!r} is in use by a running worker", code="env_in_use",
                                 status=409, hint=f"unload the models of env {name!r} first")
        flock = FileLock(base / ".lock") if base.is_dir() else None
        if flock:
            await flock.acquire(30)
            try:
                for child in list(base.iterdir()):
                    if child.name == ".lock":
                        continue
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            finally:
                flock.release()
