"""The `venvserve` command line."""

from pathlib import Path
from typing import Optional

import typer

from .settings import Settings

app = typer.Typer(help="Serve many AI models, each in its own Python environment, behind one HTTP API.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root():
    """Serve many AI models, each in its own Python environment, behind one HTTP API."""


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="bind address [default: 127.0.0.1]"),
    port: Optional[int] = typer.Option(None, help="port [default: 8000]"),
    catalog: Optional[Path] = typer.Option(None, help="models.json [default: the project's]"),
    envs_dir: Optional[Path] = typer.Option(None, help="env templates [default: envs/ beside the catalog]"),
    data_dir: Optional[Path] = typer.Option(None, help="envs, caches, spool [env: VENVSERVE_DATA_DIR]"),
    max_loaded_models: Optional[int] = typer.Option(None, help="models resident at once (0 = no limit)"),
    memory_budget_mb: Optional[int] = typer.Option(None, help="RAM budget for workers (0 = no limit)"),
    gpu_memory_budget_mb: Optional[int] = typer.Option(None, help="VRAM budget (-1 = the GPUs' total)"),
    max_queue: Optional[int] = typer.Option(None, help="requests queued per model before 429"),
    idle_timeout_s: Optional[float] = typer.Option(None, help="unload a model idle this long (0 = never)"),
    request_timeout_s: Optional[float] = typer.Option(None, help="a request's time limit on a worker"),
    max_upload_mb: Optional[float] = typer.Option(None, help="largest accepted upload"),
    worker_transport: Optional[str] = typer.Option(None, help="unix (default) or tcp"),
    log_format: Optional[str] = typer.Option(None, help="text or json"),
    log_level: Optional[str] = typer.Option(None, help="debug, info, warning"),
    api_key: Optional[str] = typer.Option(None, help="require `Authorization: Bearer KEY` on /v1/*"),
    admin_key: Optional[str] = typer.Option(None, help="key for env builds, load and unload"),
):
    """Start the HTTP server."""
    import uvicorn

    from . import logs
    from .api.app import create_app
    from .catalog import CatalogError

    settings = Settings.load(
        host=host, port=port, catalog=catalog, envs_dir=envs_dir, data_dir=data_dir,
        max_loaded_models=max_loaded_models, memory_budget_mb=memory_budget_mb,
        gpu_memory_budget_mb=gpu_memory_budget_mb, max_queue=max_queue, idle_timeout_s=idle_timeout_s,
        request_timeout_s=request_timeout_s, max_upload_mb=max_upload_mb,
        worker_transport=worker_transport, log_format=log_format, log_level=log_level,
        api_key=api_key, admin_key=admin_key)
    logs.setup(settings.log_level, settings.log_format)
    try:
        application = create_app(settings)
    except CatalogError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        typer.echo(f"warning: listening on {settings.host} without --api-key: anyone who can reach "
                   "this port can use every model", err=True)
    uvicorn.run(application, host=settings.host, port=settings.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=int(settings.stop_grace_s),
                loop="auto", http="auto")


if __name__ == "__main__":  # pragma: no cover
    app()
