"""`venvserve serve`: the HTTP server, a banner once it listens, and the
runtime file (``DATA/server.json``) through which the CLI finds it."""

import enum
import os
from pathlib import Path
from typing import Optional

import typer

from .. import __version__, console
from ..settings import Settings
from .common import CatalogOpt, DataDirOpt, EnvsDirOpt, load_settings
from .discovery import remove_runtime_file, write_runtime_file


class Transport(str, enum.Enum):
    unix = "unix"
    tcp = "tcp"


class LogFormat(str, enum.Enum):
    text = "text"
    json = "json"


class LogLevel(str, enum.Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _opt(name: str, help: str, unit: str = ""):
    """An option whose default is the setting's own: shown in --help, never passed on,
    so that VENVSERVE_NAME still applies when the flag is absent."""
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    shown = f"{default:g}" if isinstance(default, float) else str(default)
    return typer.Option(None, help=f"{help}  [default: {shown}{unit}]", show_default=False)


def serve(
    host: Optional[str] = _opt("host", "bind address"),
    port: Optional[int] = _opt("port", "port (0: any free port)"),
    catalog: CatalogOpt = None,
    envs_dir: EnvsDirOpt = None,
    data_dir: DataDirOpt = None,
    max_loaded_models: Optional[int] = _opt("max_loaded_models", "models resident at once (0 = no limit)"),
    memory_budget_mb: Optional[int] = _opt("memory_budget_mb", "RAM budget for workers in MB (0 = no limit)"),
    gpu_memory_budget_mb: Optional[int] = _opt("gpu_memory_budget_mb", "VRAM budget in MB (-1 = the GPUs' total)"),
    max_queue: Optional[int] = _opt("max_queue", "requests queued per model before 429"),
    idle_timeout_s: Optional[float] = _opt("idle_timeout_s", "unload a model idle this long, s (0 = never)"),
    request_timeout_s: Optional[float] = _opt("request_timeout_s", "a request's time limit on a worker, s"),
    load_timeout_s: Optional[float] = _opt("load_timeout_s", "a model's time limit to load, s (first loads may download)"),
    build_timeout_s: Optional[float] = _opt("build_timeout_s", "an env build's time limit, s"),
    max_upload_mb: Optional[float] = _opt("max_upload_mb", "largest request body in MB"),
    worker_transport: Optional[Transport] = _opt("worker_transport", "how the gateway reaches its workers"),
    log_format: Optional[LogFormat] = _opt("log_format", "log lines as"),
    log_level: Optional[LogLevel] = _opt("log_level", "least severe log level shown"),
    api_key: Optional[str] = typer.Option(None, show_default=False, help=(
        "require `Authorization: Bearer KEY` on /v1/*")),
    api_key_file: Optional[Path] = typer.Option(None, show_default=False, help="a file holding the API key"),
    admin_key: Optional[str] = typer.Option(None, show_default=False,
                                            help="key for env builds, load and unload"),
    admin_key_file: Optional[Path] = typer.Option(None, show_default=False, help="a file holding the admin key"),
    allowed_hosts: Optional[list[str]] = typer.Option(None, "--allowed-host", show_default=False, metavar="HOST",
                                                      help="a Host name served beyond the bound address (repeat)"),
    allowed_origins: Optional[list[str]] = typer.Option(None, "--allowed-origin", show_default=False, metavar="ORIGIN",
                                                        help="a cross-site Origin allowed to change state (repeat)"),
):
    """Start the HTTP server; a banner says where once it listens.

    Every option can also be set as a VENVSERVE_NAME variable
    (VENVSERVE_MAX_QUEUE=128); a flag wins over the variable. Keys are safer
    in a file or the environment than as flags, which other local users can
    read in the process list.
    """
    from .. import httpserver, logs
    from ..api.app import create_app
    from ..catalog import CatalogError

    settings = load_settings(
        catalog=catalog, envs_dir=envs_dir, data_dir=data_dir, host=host, port=port,
        max_loaded_models=max_loaded_models, memory_budget_mb=memory_budget_mb,
        gpu_memory_budget_mb=gpu_memory_budget_mb, max_queue=max_queue, idle_timeout_s=idle_timeout_s,
        request_timeout_s=request_timeout_s, load_timeout_s=load_timeout_s, build_timeout_s=build_timeout_s,
        max_upload_mb=max_upload_mb, worker_transport=worker_transport and worker_transport.value,
        log_format=log_format and log_format.value, log_level=log_level and log_level.value,
        api_key=api_key, admin_key=admin_key, api_key_file=api_key_file, admin_key_file=admin_key_file,
        allowed_hosts=allowed_hosts or None, allowed_origins=allowed_origins or None)
    logs.setup(settings.log_level, settings.log_format)
    try:
        application = create_app(settings)
    except CatalogError as exc:
        console.error(str(exc), "fix the file, or pass --catalog PATH")
        raise typer.Exit(2)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        console.warning(f"listening on {settings.host} without --api-key: anyone who can reach "
                        "this port can use every model")

    def on_listen(server) -> None:
        port = server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.port
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        local = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else shown
        write_runtime_file(settings.data_dir, f"http://{local}:{port}")
        console.err().print(banner(application.state.gateway, f"http://{shown}:{port}"), soft_wrap=True,
                            markup=False, highlight=False)

    try:
        httpserver.run(application, settings, on_listen=on_listen)
    finally:
        remove_runtime_file(settings.data_dir)


def banner(gw, url: str) -> str:
    """What a user needs to start: where, what runs here (and why the rest does not), the limits."""
    from .. import availability

    settings, catalog = gw.settings, gw.catalog
    lines = [f"venvserve {__version__} listening on {url} (pid {os.getpid()})",
             f"  web page   {url}/",
             f"  API docs   {url}/docs",
             f"  data dir   {settings.data_dir}",
             f"  catalog    {Path(catalog.path or '-').resolve()} "
             f"({console.plural(len(catalog), 'model')}, default {catalog.default})"]
    rows = []
    for spec in catalog:
        ok, reason = availability.check(spec, gw.envs)
        if ok:
            where = f"env {spec.python_env}" if spec.python_env else (
                f"python {spec.python}" if spec.python else "the gateway's interpreter")
            rows.append(("ok", spec.id, f"{where}, {spec.device}"))
        else:
            rows.append(("no", spec.id, (reason or "").partition("; ")[0]))
    width = max((len(r[1]) for r in rows), default=0)
    available = sum(r[0] == "ok" for r in rows)
    lines.append(f"  models     {available} of {len(rows)} available here")
    lines += [f"    {mark:<2}  {model:<{width}}  {why}" for mark, model, why in rows]
    lines.append("  budgets    " + budgets(settings))
    return "\n".join(lines)


def budgets(settings: Settings) -> str:
    def limit(value, unit=""):
        return "no limit" if value == 0 else f"{value}{unit}"

    gpu = "the GPUs' total" if settings.gpu_memory_budget_mb < 0 else limit(settings.gpu_memory_budget_mb, " MB")
    idle = "never" if settings.idle_timeout_s == 0 else f"after {settings.idle_timeout_s:g}s"
    return (f"models resident {limit(settings.max_loaded_models)}, RAM {limit(settings.memory_budget_mb, ' MB')}, "
            f"VRAM {gpu}, queue {settings.max_queue} per model, idle unload {idle}, "
            f"uploads {settings.max_upload_mb:g} MB")
