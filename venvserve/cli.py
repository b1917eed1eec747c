"""The `venvserve` command line: serve, ocr, envs, models, doctor.

Output follows uv's manners (see console.py): data on stdout, progress and
errors on stderr, ``error:`` then ``hint:``, exit code 1 on error.
"""

import asyncio
import contextlib
import difflib
import enum
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import console
from .settings import Settings

app = typer.Typer(help="Serve many AI models, each in its own Python environment, behind one HTTP API.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
envs_app = typer.Typer(help="Build, list, lock and remove the models' Python environments.",
                       no_args_is_help=True)
models_app = typer.Typer(help="The models of the catalog.", no_args_is_help=True)
app.add_typer(envs_app, name="envs")
app.add_typer(models_app, name="models")

# Options every command takes: where the catalog, the env templates and the data live.
CatalogOpt = Annotated[Optional[Path], typer.Option(
    help="models.json (env: VENVSERVE_CATALOG; default: the project's)", show_default=False)]
EnvsDirOpt = Annotated[Optional[Path], typer.Option(
    help="env templates (env: VENVSERVE_ENVS_DIR; default: envs/ beside the catalog)", show_default=False)]
DataDirOpt = Annotated[Optional[Path], typer.Option(
    help="built envs, caches, spool (env: VENVSERVE_DATA_DIR)", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]

# Errors about one input file: a multi-file run reports them and goes on.
FILE_ERRORS = {"empty_file", "unsupported_media_type", "invalid_image", "invalid_pdf", "too_many_pages",
               "file_too_large"}


class Format(str, enum.Enum):
    text = "text"
    markdown = "markdown"


@app.callback()
def _root(ctx: typer.Context,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also show info logs on stderr")] = False):
    """Serve many AI models, each in its own Python environment, behind one HTTP API."""
    if ctx.invoked_subcommand == "serve":
        return  # the server sets up its own logging (--log-level, --log-format)
    console.capture_logs(verbose)
    if not verbose:
        # The CLI reports env builds itself (with the uv log on failure).
        import logging

        logging.getLogger("venvserve.envs").setLevel(logging.CRITICAL)


# -- errors -------------------------------------------------------------------

def fail(message: str, hint: str | None = None, detail=(), detail_title: str = "") -> typer.Exit:
    console.error(message, hint, detail, detail_title)
    return typer.Exit(1)


CLI_HINTS = {
    "model_failed": "fix the cause shown above, then run the command again",
    "wrong_task": "pick an OCR model: `venvserve models list` shows each model's task",
    "server_unreachable": None,  # the error's own hint
}


@contextlib.contextmanager
def reported():
    """Turn the library's errors into ``error: ... / hint: ...`` and exit code 1."""
    from .catalog import CatalogError
    from .errors import VenvserveError

    try:
        yield
    except VenvserveError as exc:
        hint = CLI_HINTS.get(exc.code, exc.hint) or exc.hint
        raise fail(exc.message, hint) from None
    except CatalogError as exc:
        raise fail(str(exc), "fix the file, or pass --catalog PATH") from None
    except OSError as exc:  # an unwritable data dir, a file that vanished...
        raise fail(str(exc), "`venvserve doctor` checks the data dir and the tools") from None
    except KeyboardInterrupt:
        console.err().print("Interrupted")
        raise typer.Exit(130) from None


def settings_for(catalog, envs_dir, data_dir, **more) -> Settings:
    return Settings.load(catalog=catalog, envs_dir=envs_dir, data_dir=data_dir, **more)


def env_manager(settings: Settings):
    from .envs import EnvManager

    return EnvManager(settings.templates_dir, settings.data_dir)


# -- serve --------------------------------------------------------------------

@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="bind address (default: 127.0.0.1)"),
    port: Optional[int] = typer.Option(None, help="port (default: 8000)"),
    catalog: CatalogOpt = None,
    envs_dir: EnvsDirOpt = None,
    data_dir: DataDirOpt = None,
    max_loaded_models: Optional[int] = typer.Option(None, help="models resident at once (0 = no limit)"),
    memory_budget_mb: Optional[int] = typer.Option(None, help="RAM budget for workers (0 = no limit)"),
    gpu_memory_budget_mb: Optional[int] = typer.Option(None, help="VRAM budget (-1 = the GPUs' total)"),
    max_queue: Optional[int] = typer.Option(None, help="requests queued per model before 429"),
    idle_timeout_s: Optional[float] = typer.Option(None, help="unload a model idle this long (0 = never)"),
    request_timeout_s: Optional[float] = typer.Option(None, help="a request's time limit on a worker"),
    load_timeout_s: Optional[float] = typer.Option(None, help="a model's time limit to load (first loads may download)"),
    max_upload_mb: Optional[float] = typer.Option(None, help="largest accepted upload"),
    worker_transport: Optional[str] = typer.Option(None, help="unix (default) or tcp"),
    log_format: Optional[str] = typer.Option(None, help="text or json"),
    log_level: Optional[str] = typer.Option(None, help="debug, info, warning"),
    api_key: Optional[str] = typer.Option(None, help="require `Authorization: Bearer KEY` on /v1/*"),
    admin_key: Optional[str] = typer.Option(None, help="key for env builds, load and unload"),
):
    """Start the HTTP server."""
    from . import httpserver, logs
    from .api.app import create_app
    from .catalog import CatalogError

    settings = settings_for(
        catalog, envs_dir, data_dir, host=host, port=port,
        max_loaded_models=max_loaded_models, memory_budget_mb=memory_budget_mb,
        gpu_memory_budget_mb=gpu_memory_budget_mb, max_queue=max_queue, idle_timeout_s=idle_timeout_s,
        request_timeout_s=request_timeout_s, load_timeout_s=load_timeout_s, max_upload_mb=max_upload_mb,
        worker_transport=worker_transport, log_format=log_format, log_level=log_level,
        api_key=api_key, admin_key=admin_key)
    logs.setup(settings.log_level, settings.log_format)
    try:
        application = create_app(settings)
    except CatalogError as exc:
        console.error(str(exc), "fix the file, or pass --catalog PATH")
        raise typer.Exit(2)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        console.warning(f"listening on {settings.host} without --api-key: anyone who can reach "
                        "this port can use every model")
    httpserver.run(application, settings)


# -- ocr ----------------------------------------------------------------------

@app.command()
def ocr(
    files: Annotated[list[Path], typer.Argument(help="images (PNG, JPEG, WebP, TIFF, BMP) or PDFs",
                                                show_default=False)],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="model id (default: the catalog's first)",
                                                 show_default=False)] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or markdown")] = Format.text,
    server: Annotated[Optional[str], typer.Option(
        envvar="VENVSERVE_URL", show_default=False,
        help="OCR through this server (default: http://127.0.0.1:PORT when one answers)")] = None,
    local: Annotated[bool, typer.Option("--local", help="never use a server: run the model in this process")] = False,
    api_key: Annotated[Optional[str], typer.Option(help="the server's API key (env: VENVSERVE_API_KEY)",
                                                   show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file (JSON Lines)")] = False,
    catalog: CatalogOpt = None,
    envs_dir: EnvsDirOpt = None,
    data_dir: DataDirOpt = None,
):
    """OCR images and PDFs: text on stdout, progress on stderr.

    Through a running server when one answers (--server, VENVSERVE_URL, or the
    default address); otherwise in this process: the model's env is built if
    needed and its worker started for this run. --catalog, --envs-dir or
    --data-dir imply an in-process run.
    """
    with reported():
        for path in files:
            if not path.is_file():
                what = "is a directory" if path.is_dir() else "does not exist"
                raise fail(f"{path} {what}", "pass image or PDF files")
        settings = settings_for(catalog, envs_dir, data_dir, api_key=api_key)
        if server and local:
            raise fail("--server and --local exclude each other", "pick one")
        remote = _find_server(settings, server, local or any((catalog, envs_dir, data_dir)))
        printer = _OcrPrinter(files, as_json)
        started = time.monotonic()
        if remote is not None:
            _ocr_remote(remote, files, model, fmt.value, printer)
        else:
            asyncio.run(_ocr_local(settings, files, model, fmt.value, printer))
        printer.summary(time.monotonic() - started)
    if printer.failures:
        raise typer.Exit(1)


def _find_server(settings: Settings, url: str | None, local: bool):
    from .remote import RemoteServer

    if url:
        return RemoteServer(url, settings.api_key)
    if local:
        return None
    candidate = RemoteServer(f"http://127.0.0.1:{settings.port}", settings.api_key)
    if candidate.healthy():
        console.progress(f"Using the server at {candidate.url} (--local to run the model here)")
        return candidate
    return None


class _OcrPrinter:
    """Each file's text on stdout (with a ``==> FILE <==`` header when several),
    a progress line per file on stderr, a summary at the end."""

    def __init__(self, files: list[Path], as_json: bool):
        self.many = len(files) > 1
        self.as_json = as_json
        self.done = 0
        self.pages = 0
        self.failures = 0
        self.printed = False

    def result(self, path: Path, result: dict, seconds: float) -> None:
        pages = len(result.get("pages") or [None])
        self.done += 1
        self.pages += pages
        console.progress(f"OCR'd {console.plural(pages, 'page')} of {path} with {result.get('model')} "
                         f"in {console.duration(seconds)}")
        if self.as_json:
            console.write(json.dumps({"file": str(path), **result}, ensure_ascii=False))
            return
        if self.many:
            console.write(("\n" if self.printed else "") + f"==> {path} <==")
        console.write(result.get("text", ""))
        self.printed = True

    def failed(self, path: Path, exc) -> None:
        self.failures += 1
        console.error(f"{path}: {exc.message}", exc.hint)

    def summary(self, seconds: float) -> None:
        if self.many:
            failed = f", {self.failures} failed" if self.failures else ""
            console.progress(f"OCR'd {console.plural(self.done, 'file')} ({console.plural(self.pages, 'page')}) "
                             f"in {console.duration(seconds)}{failed}")


def _ocr_remote(remote, files: list[Path], model: str | None, fmt: str, printer: _OcrPrinter) -> None:
    from .errors import VenvserveError

    for path in files:
        t0 = time.monotonic()
        try:
            with console.spinner(f"OCR {path} on {remote.url}"):
                result = remote.ocr(path, model, fmt)
        except VenvserveError as exc:
            if exc.code not in FILE_ERRORS:
                raise
            printer.failed(path, exc)
            continue
        printer.result(path, result, time.monotonic() - t0)


async def _ocr_local(settings: Settings, files: list[Path], model: str | None, fmt: str,
                     printer: _OcrPrinter) -> None:
    from . import availability
    from .errors import Unavailable, VenvserveError
    from .gateway import Gateway

    gw = Gateway(settings)
    model_id = _resolve_model(gw, model)
    spec = gw.catalog.get(model_id)
    ok, reason = availability.check(spec, gw.envs)
    if not ok:
        cause, _, hint = reason.partition("; ")
        raise Unavailable(f"model {model_id!r} is not available: {cause}", code="model_unavailable",
                          hint=hint or "`venvserve doctor` checks what this machine has")
    await gw.start()
    try:
        if spec.python_env:
            await build_env(gw.envs, spec.python_env)
        t0 = time.monotonic()
        with console.spinner(f"Loading model {model_id}"):
            workers = await gw.supervisor.load(model_id)
        pids = ", ".join(str(w.pid) for w in workers)
        console.progress(f"Loaded model {model_id} in {console.duration(time.monotonic() - t0)} "
                         f"(worker pid {pids})")
        for path in files:
            t0 = time.monotonic()
            work_dir = gw.new_request_dir()
            try:
                spooled = _spool(path, work_dir)
                with console.spinner(f"OCR {path}"):
                    result = await gw.ocr(spooled, spooled.stat().st_size, model_id, fmt, work_dir=work_dir)
            except VenvserveError as exc:
                if exc.code not in FILE_ERRORS:
                    raise
                printer.failed(path, exc)
                continue
            finally:
                shutil.rmtree(work_dir, ignore_errors=True)
            printer.result(path, result, time.monotonic() - t0)
    finally:
        await gw.stop()


def _resolve_model(gw, model: str | None) -> str:
    from .errors import NotFound

    try:
        return gw.resolve_model(model)
    except NotFound:
        ids = [m.id for m in gw.catalog]
        close = difflib.get_close_matches(model or "", ids, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise NotFound(f"unknown model {model!r} in {gw.catalog.path}", code="model_not_found",
                       hint=f"{guess}`venvserve models list` shows the models ({', '.join(ids)})") from None


def _spool(path: Path, work_dir: Path) -> Path:
    """Put the file where workers may read it (the spool): a hard link, else a copy."""
    target = work_dir / ("input" + "".join(path.suffixes[-1:]))
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return target


# -- envs ---------------------------------------------------------------------

async def build_env(envs, name: str):
    """Make env ``name`` ready, with a spinner showing uv's latest line; a line when built."""
    from .envs import EnvState

    status = envs.status(name)
    if status.state in (EnvState.READY, EnvState.EXTERNAL):
        return status
    waiting = status.state is EnvState.INSTALLING
    verb = "Rebuilding" if status.state is EnvState.OUTDATED else "Building"
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
    python = status.path and _python_version(status.path)
    suffix = f" (Python {python})" if python else ""
    if waiting:
        console.progress(f"Waited {took} for env {name}, built by another process{suffix}")
    else:
        console.progress(f"Built env {name} in {took}{suffix}")
    return status


def _python_version(venv: Path) -> str | None:
    from .envs import venvinfo

    return venvinfo.python_version(venv)


def _build_log_tail(envs, name: str, lines: int = 15) -> list[str]:
    """The last lines of the latest build in ``install.log``."""
    from .envs import venvinfo

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


def _env_names(envs, settings: Settings) -> list[str]:
    from .catalog import CatalogError, load_catalog

    names = set(envs.names())
    with contextlib.suppress(CatalogError):
        catalog = load_catalog(settings.catalog, settings.default_model)
        names.update(m.python_env for m in catalog if m.python_env and envs.external(m.python_env))
    return sorted(names)


@envs_app.command("list")
def envs_list(catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
              as_json: JsonOpt = False):
    """Every env: status, Python, size on disk, path."""
    from .envs import venvinfo

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        entries = []
        for name in _env_names(envs, settings):
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
                 console.size(e["size_bytes"]), e["path"] or "-"] for e in entries]
        console.table(["name", "status", "python", "size", "path"], rows)


@envs_app.command("install")
def envs_install(
    names: Annotated[Optional[list[str]], typer.Argument(help="env names", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="every env template")] = False,
    catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
):
    """Build envs with uv (no-op for a ready one); the uv log on failure."""
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
        for name in names:
            envs.template(name)  # unknown names fail before anything is built
        failed = asyncio.run(_install(envs, names))
    if failed:
        raise typer.Exit(1)


async def _install(envs, names: list[str]) -> int:
    from .envs import EnvState
    from .errors import EnvBuildFailed

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


@envs_app.command("remove")
def envs_remove(name: Annotated[str, typer.Argument(help="env name", show_default=False)],
                catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None):
    """Delete an env's builds (refused while a process runs from it)."""
    from .envs import EnvState, venvinfo

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        status = envs.status(name)
        if status.state is EnvState.EXTERNAL:
            raise fail(f"env {name!r} is the hand-made {status.path}; venvserve does not manage it",
                       f"delete {status.path} yourself if you no longer need it")
        base = envs.root / name
        builds = [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
        if not builds and status.state is not EnvState.FAILED:
            raise fail(f"env {name!r} is not installed", "`venvserve envs list` shows the installed envs")
        users = _processes_using(base)
        if users:
            raise fail(f"env {name!r} is in use by {console.plural(len(users), 'process', 'processes')} "
                       f"(pid {', '.join(map(str, users))})",
                       "stop the server, or unload the models of this env, then remove it")
        freed = venvinfo.size_bytes(base)
        asyncio.run(envs.remove(name))
        console.progress(f"Removed env {name} ({console.size(freed)}) from {base}")


def _processes_using(base: Path) -> list[int]:
    """Pids whose program runs from under ``base`` (Linux /proc; [] elsewhere)."""
    prefix = str(base.resolve()) + os.sep
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue
        if argv0 and os.path.abspath(argv0).startswith(prefix):
            pids.append(int(entry.name))
    return sorted(pids)


@envs_app.command("lock")
def envs_lock(name: Annotated[str, typer.Argument(help="env name", show_default=False)],
              catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None):
    """Write the template's uv.lock (`uv lock --project envs/NAME`)."""
    from .envs.manager import uv_binary

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        template = env_manager(settings).template(name)
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


@envs_app.command("plan")
def envs_plan(
    names: Annotated[Optional[list[str]], typer.Argument(help="env templates to plan (default: all)",
                                                         show_default=False)] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="seconds allowed for each `uv lock`")] = 120.0,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="resolve again; ignore earlier verdicts")] = False,
    catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
):
    """Which env templates could share one env? Proposes the fewest envs, with the conflicts as evidence.

    Resolves every pair of templates together with uv (Linux x86_64; PyPI must
    be reachable the first time, verdicts are cached in the data dir), checks
    the joint locks for distributions that install the same module (cv2...),
    and compares the templates' Python bounds.
    """
    from .envs import EnvState
    from .envs.manager import uv_binary
    from .planner import Planner

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        known = envs.names()
        names = names or known
        for name in names:
            if name not in known:
                raise fail(f"no env template {name!r} in {settings.templates_dir}",
                           f"the templates are: {', '.join(known)}")
        if len(names) < 2:
            raise fail("planning needs two env templates or more", "name them, or give none to plan them all")
        ready = {}
        for name in names:
            status = envs.status(name)
            if status.state in (EnvState.READY, EnvState.OUTDATED) and status.path:
                ready[name] = status.path
        planner = Planner(settings.templates_dir, settings.data_dir, uv_binary(), timeout_s=timeout_s,
                          use_cache=not no_cache, ready_envs=ready)
        pairs = len(names) * (len(names) - 1) // 2
        with console.spinner(f"Resolving {console.plural(pairs, 'pair')} of env templates with uv"):
            plan = planner.plan(list(names))
    console.progress(f"Resolved {console.plural(plan['resolved'], 'joint lock')} with uv in "
                     f"{console.duration(plan['seconds'])} ({plan['cached']} from cache)")
    if as_json:
        console.write(json.dumps(plan, indent=2))
        return
    _print_plan(plan)


def _print_plan(plan: dict) -> None:
    envs = plan["envs"]
    lines = [f"Proposed: {console.plural(len(envs), 'env')} for {console.plural(len(plan['templates']), 'template')}"]
    for i, env in enumerate(envs, 1):
        what = "merge" if len(env["members"]) > 1 else "keep"
        lines.append(f"  {i}. {what} {' + '.join(env['members'])}  "
                     f"({console.plural(env['packages'], 'package')}, ≈{console.size(env['size_bytes'])})")
        lines += [f"       note: {note}" for note in env["notes"]]
    if plan["conflicts"]:
        lines += ["", "Cannot share an env:"]
        width = max(len(" × ".join(c["members"])) for c in plan["conflicts"])
        for pair in plan["conflicts"]:
            label = " × ".join(pair["members"])
            for n, conflict in enumerate(pair["conflicts"]):
                lines.append(f"  {(label if n == 0 else ''):<{width}}  {conflict['kind']}: {conflict['detail']}")
            lines += [f"  {'':<{width}}  note: {note}" for note in pair["notes"]]
    merged = [env for env in envs if len(env["members"]) > 1]
    if merged:
        lines += ["", "The merges above resolve, so no hard conflict keeps those templates apart; making them is a "
                      "trade: one env fewer to build and lock, but every member then installs the whole merged env "
                      "(see the sizes and notes)."]
    console.write("\n".join(lines))


# -- models -------------------------------------------------------------------

@models_app.command("list")
def models_list(catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
                as_json: JsonOpt = False):
    """Every model: architecture, env and its status, available or why not."""
    from . import availability
    from .catalog import load_catalog

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        models = load_catalog(settings.catalog, settings.default_model)
        envs = env_manager(settings)
        entries = []
        for spec in models:
            ok, reason = availability.check(spec, envs)
            env_status = None
            if spec.python_env and ok:
                env_status = envs.status(spec.python_env).state.value
            env = spec.python_env or (f"python {spec.python}" if spec.python else "(gateway)")
            entries.append({"id": spec.id, "task": spec.task, "architecture": spec.architecture, "env": env,
                            "env_status": env_status, "device": spec.device, "available": ok, "reason": reason,
                            "default": spec.id == models.default})
        if as_json:
            console.write(json.dumps(entries, indent=2))
            return
        rows = [[e["id"], e["architecture"], e["env"], e["env_status"] or "-", e["device"],
                 "yes" if e["available"] else "no", e["reason"] or ""] for e in entries]
        console.table(["id", "architecture", "env", "env status", "device", "available", "reason"], rows,
                      caption=f"default: {models.default}; catalog: {models.path}")


PULL_SCRIPT = """
import json, sys
from venvserve_worker.server import resolve_backend
backend = resolve_backend(sys.argv[1])
pull = getattr(backend, "pull", None)
if pull is None:
    print("VENVSERVE-PULL null")
    sys.exit(0)
print("VENVSERVE-PULL " + json.dumps(pull(json.loads(sys.argv[2]))))
"""


@models_app.command("pull")
def models_pull(model_id: Annotated[str, typer.Argument(help="model id", show_default=False)],
                force: Annotated[bool, typer.Option("--force", help="download even if already cached")] = False,
                catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None):
    """Download a model's weights into the data dir's model caches (where a hub is reachable).

    Runs the backend's own download code in the model's env (built first if
    needed), with HF_HOME, MODELSCOPE_CACHE and PADDLE_PDX_CACHE_HOME pointing
    into the data dir, the same caches the workers read. The server can then
    load the model offline.
    """
    from . import availability
    from .catalog import load_catalog
    from .errors import NotFound

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        models = load_catalog(settings.catalog, settings.default_model)
        spec = models.get(model_id)
        if spec is None:
            ids = [m.id for m in models]
            close = difflib.get_close_matches(model_id, ids, n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            raise NotFound(f"unknown model {model_id!r} in {models.path}", code="model_not_found",
                           hint=f"{guess}`venvserve models list` shows the models")
        needed = availability.weights_needed(spec)
        builtin = availability.backend_class(spec.architecture) is not None
        if builtin and not needed:
            console.progress(f"Model {model_id} has no weights to download: its files come with its env "
                             "or the system")
            return
        where = ", ".join(str(availability.weights_path(ref, settings.data_dir)) for ref in needed)
        if needed and not force and all(availability.weights_present(ref, settings.data_dir) for ref in needed):
            console.progress(f"The weights of {model_id} are already in {where} (--force downloads again)")
            return
        python = asyncio.run(_pull_interpreter(settings, spec))
        t0 = time.monotonic()
        console.progress(f"Downloading the weights of {model_id} with {python}")
        result = _run_pull(settings, spec, python)
    if result is None:
        console.progress(f"Model {model_id}'s backend downloads nothing (no pull())")
        return
    console.progress(f"Pulled {model_id} in {console.duration(time.monotonic() - t0)}: "
                     f"{result.get('path') or where}")


async def _pull_interpreter(settings: Settings, spec) -> str:
    if spec.python:
        return spec.python
    if spec.python_env:
        envs = env_manager(settings)
        status = await build_env(envs, spec.python_env)
        return str(status.python)
    return sys.executable


def _run_pull(settings: Settings, spec, python: str) -> dict | None:
    from . import availability
    from .workers.runtime_path import runtime_path

    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(availability.cache_env(settings.data_dir))
    env["VENVSERVE_DATA_DIR"] = str(settings.data_dir)
    env["PYTHONPATH"] = str(runtime_path(settings.data_dir))
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run([python, "-s", "-c", PULL_SCRIPT, spec.architecture, json.dumps(spec.options)],
                          env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None, text=True)
    marker = [line for line in proc.stdout.splitlines() if line.startswith("VENVSERVE-PULL ")]
    if proc.returncode != 0 or not marker:
        raise fail(f"downloading the weights of {spec.id} failed (exit {proc.returncode}); the output is above",
                   "is the hub reachable from here (proxy, HF_ENDPOINT, PADDLE_PDX_MODEL_SOURCE)? "
                   "`venvserve models list` shows where the weights are looked for")
    return json.loads(marker[-1].split(" ", 1)[1])


# -- doctor -------------------------------------------------------------------

@app.command()
def doctor(catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None):
    """Check uv, an interpreter per env, tesseract, GPUs and disk; exit 1 if a required check fails."""
    from . import doctor as checks

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        t0 = time.monotonic()
        results = checks.run(settings)
    from rich.text import Text

    styles = {checks.OK: "green", checks.WARN: "yellow", checks.FAIL: "bold red"}
    width = max(len(c.name) for c in results)
    out = console.out()
    for check in results:
        line = Text.assemble((f"{check.level:<4}", styles[check.level]), "  ",
                                     f"{check.name:<{width}}  {check.detail}")
        out.print(line, soft_wrap=True)
        if check.hint and check.level != checks.OK:
            out.print(Text.assemble(" " * (width + 8), ("hint", "bold cyan"), ": ", check.hint),
                      soft_wrap=True)
    fails = sum(c.level == checks.FAIL for c in results)
    warns = sum(c.level == checks.WARN for c in results)
    console.progress(f"Ran {console.plural(len(results), 'check')} in {console.duration(time.monotonic() - t0)}: "
                     f"{console.plural(fails, 'failure')}, {console.plural(warns, 'warning')}")
    if fails:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover
    app(prog_name="venvserve")


if __name__ == "__main__":  # pragma: no cover
    main()


# -- ray ----------------------------------------------------------------------

@app.command("ray", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                     "help_option_names": []})
def ray_command(ctx: typer.Context,
                command: Annotated[str, typer.Argument(help="deploy | plan (add --help for their options)")]):
    """Put the catalog on a Ray cluster (Ray Serve): one deployment per model, the same HTTP API."""
    try:
        from .ray.__main__ import main as ray_main
    except ImportError as exc:
        raise fail(f"Ray is not installed ({exc})", hint="pip install 'venvserve[ray]'") from None
    raise typer.Exit(ray_main([command, *ctx.args]))
