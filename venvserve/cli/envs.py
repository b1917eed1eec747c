"""`venvserve envs ...`: build, list, verify, lock and remove the models' Python environments."""

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import console
from ..settings import Settings
from .common import (CatalogOpt, DataDirOpt, EnvsDirOpt, JsonOpt, env_manager, fail, reported, settings_for,
                     unknown_env)

app = typer.Typer(help="Build, list, verify, lock and remove the models' Python environments.",
                  no_args_is_help=True, rich_markup_mode=None)
NameArg = Annotated[str, typer.Argument(help="env name", show_default=False)]


async def build_env(envs, name: str):
    """Make env ``name`` ready, with a spinner showing uv's latest line; a line when built."""
    from ..envs import EnvState, venvinfo

    status = envs.status(name)
    if status.state in (EnvState.READY, EnvState.EXTERNAL):
        return status
    waiting = status.state is EnvState.INSTALLING
    verb = "Rebuilding" if status.state in (EnvState.OUTDATED, EnvState.FAILED) and status.fingerprint else "Building"
    if status.state is EnvState.FAILED and status.error:
        console.progress(f"Env {name} is failed ({status.error}); building it again")
    lines: asyncio.Queue = asyncio.Queue()
    envs.listeners.setdefault(name, []).append(lines)
    t0 = time.monotonic()
    try:
        first = f"Waiting for another process building env {name}" if waiting else f"{verb} env {name}"
        with console.spinner(first) as spin:
            async def follow():
                while True:
                    spin.update(f"{verb} env {name}: {(await lines.get()).strip()}")

            follower = asyncio.create_task(follow())
            try:
                status = await envs.ensure(name)
            finally:
                follower.cancel()
    finally:
        envs.listeners[name].remove(lines)
    took = console.duration(time.monotonic() - t0)
    python = status.path and venvinfo.python_version(status.path)
    suffix = f" (Python {python})" if python else ""
    if waiting:
        console.progress(f"Waited {took} for env {name}, built by another process{suffix}")
    else:
        console.progress(f"Built env {name} in {took}{suffix}")
    return status


def _build_log_tail(envs, name: str, lines: int = 15) -> list[str]:
    """The last lines of the latest build in ``install.log``."""
    from ..envs import venvinfo

    tail = venvinfo.tail(envs.root / name / "install.log", 400)
    starts = [i for i, line in enumerate(tail) if line.startswith("=== build ") and " started " in line]
    latest = tail[starts[-1] + 1:] if starts else tail
    return latest[-lines:]


def _report_build_failure(envs, name: str, exc) -> None:
    tail = _build_log_tail(envs, name)
    log = envs.root / name / "install.log"
    hint = f"the whole log is in {log}" if tail else exc.hint
    message = exc.message.split(": `")[0] if tail else exc.message
    console.error(message, hint, tail, "uv log" if tail else "")


def env_names(envs, settings: Settings) -> list[str]:
    from ..catalog import CatalogError, load_catalog

    names = set(envs.names())
    with contextlib.suppress(CatalogError):
        catalog = load_catalog(settings.catalog, settings.default_model)
        names.update(m.python_env for m in catalog if m.python_env and envs.external(m.python_env))
    return sorted(names)


def check_names(envs, settings: Settings, names: list[str]) -> None:
    """Unknown names fail before anything runs, with a did-you-mean."""
    known = env_names(envs, settings)
    for name in names:
        if name not in known:
            raise unknown_env(name, known, str(settings.templates_dir))


@app.command("list")
def envs_list(catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
              as_json: JsonOpt = False):
    """Every env: status, Python, size on disk, path (and why, when failed)."""
    from ..envs import venvinfo

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        entries = []
        for name in env_names(envs, settings):
            entry = envs.describe(name)
            entry["size_bytes"] = venvinfo.size_bytes(Path(entry["path"])) if entry["path"] else None
            entries.append(entry)
        if as_json:
            console.write(json.dumps(entries, indent=2))
            return
        if not entries:
            console.warning(f"no env templates in {settings.templates_dir}")
            return
        rows = [[e["name"], e["status"], e.get("python_version") or e.get("requires_python") or "-",
                 console.size(e["size_bytes"]), e["path"] or e.get("error") or "-"] for e in entries]
        console.table(["name", "status", "python", "size", "path"], rows)


@app.command("install")
def envs_install(
    names: Annotated[Optional[list[str]], typer.Argument(help="env names", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="every env template")] = False,
    catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
):
    """Build envs with uv (no-op for a ready one; a failed or broken one is rebuilt); the uv log on failure."""
    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        if all_ and names:
            raise fail("give env names or --all, not both")
        if all_:
            names = envs.names()
            if not names:
                raise fail(f"no env templates in {settings.templates_dir}", "pass --envs-dir DIR")
        if not names:
            raise fail("which env?", "`venvserve envs install NAME`, or --all; `venvserve envs list` shows them")
        check_names(envs, settings, names)
        failed = asyncio.run(_install(envs, names))
    if failed:
        raise typer.Exit(1)


async def _install(envs, names: list[str]) -> int:
    from ..envs import EnvState
    from ..errors import EnvBuildFailed

    t0, failed, built = time.monotonic(), 0, 0
    for name in names:
        try:
            before = envs.status(name).state
            status = await build_env(envs, name)
        except EnvBuildFailed as exc:
            _report_build_failure(envs, name, exc)
            failed += 1
            continue
        if before in (EnvState.READY, EnvState.EXTERNAL):
            console.progress(f"Env {name} is already {status.state.value} ({status.path})")
        else:
            built += 1
    if len(names) > 1:
        failures = f", {failed} failed" if failed else ""
        console.progress(f"Installed {console.plural(built, 'env')} in "
                         f"{console.duration(time.monotonic() - t0)}{failures}")
    return failed


@app.command("verify")
def envs_verify(
    names: Annotated[Optional[list[str]], typer.Argument(help="env names (default: every built env)",
                                                         show_default=False)] = None,
    quick: Annotated[bool, typer.Option("--quick", help="sizes only, no hashes")] = False,
    catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
):
    """Check built envs against what uv installed (every file's size and hash); a broken env becomes failed."""
    from ..envs import EnvState

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        if names:
            check_names(envs, settings, names)
        broken = checked = 0
        for name in names or envs.names():
            state = envs.status(name).state
            if state is EnvState.EXTERNAL:
                console.progress(f"Env {name} is hand-made; venvserve does not verify it")
                continue
            t0 = time.monotonic()
            with console.spinner(f"Verifying env {name}"):
                report = envs.verify(name, full=not quick)
            if report is None:
                if names:
                    console.progress(f"Env {name} is {state.value}: nothing built to verify")
                continue
            checked += 1
            took = console.duration(time.monotonic() - t0)
            if report.ok:
                console.progress(f"Verified env {name}: {console.plural(report.checked, 'file')} in {took}")
            else:
                broken += 1
                console.error(f"env {name!r} is broken: {report.reason()}",
                              f"`venvserve envs install {name}` rebuilds it")
    if checked == 0 and not names:
        console.progress("No built env to verify")
    if broken:
        raise typer.Exit(1)


@app.command("remove")
def envs_remove(name: NameArg, catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None,
                data_dir: DataDirOpt = None):
    """Delete an env's builds (refused while a process runs from it)."""
    from ..envs import EnvState, venvinfo
    from ..system.processes import running_from

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        check_names(envs, settings, [name])
        status = envs.status(name)
        if status.state is EnvState.EXTERNAL:
            raise fail(f"env {name!r} is the hand-made {status.path}; venvserve does not manage it",
                       f"delete {status.path} yourself if you no longer need it")
        base = envs.root / name
        builds = [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
        if not builds and status.state is not EnvState.FAILED:
            raise fail(f"env {name!r} is not installed", "`venvserve envs list` shows the installed envs")
        users = running_from(base) if base.is_dir() else []
        if users:
            raise fail(f"env {name!r} is in use by {console.plural(len(users), 'process', 'processes')} "
                       f"(pid {', '.join(map(str, users))})",
                       "stop the server, or unload the models of this env, then remove it")
        freed = venvinfo.size_bytes(base)
        asyncio.run(envs.remove(name))
        console.progress(f"Removed env {name} ({console.size(freed)}) from {base}")


@app.command("lock")
def envs_lock(name: NameArg, catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None):
    """Write the template's uv.lock (`uv lock --project envs/NAME`)."""
    from ..envs.manager import uv_binary

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        if name not in envs.names():
            raise unknown_env(name, envs.names(), str(settings.templates_dir))
        template = envs.template(name)
        lockfile = template.path / "uv.lock"
        before = lockfile.read_bytes() if lockfile.exists() else None
        t0 = time.monotonic()
        code = subprocess.call([uv_binary(), "lock", "--project", str(template.path)],
                               stdin=subprocess.DEVNULL, stdout=sys.stderr)
        if code != 0:
            raise fail(f"`uv lock` failed for env {name!r} (exit {code}); uv's message is above",
                       f"fix the dependencies in {template.path / 'pyproject.toml'}")
        took = console.duration(time.monotonic() - t0)
        if lockfile.read_bytes() == before:
            console.progress(f"Checked the lock of env {name} in {took}: {lockfile} is up to date")
        else:
            console.progress(f"Wrote {lockfile} in {took}")
            console.progress(f"Commit it; `venvserve envs install {name}` builds the env from it")


from . import plan as _plan  # noqa: E402  (registers `envs plan` on this app)

__all__ = ["app", "build_env", "_plan"]
