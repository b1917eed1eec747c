"""`venvserve ray deploy | plan`: the catalog on a Ray cluster (Ray Serve),
one deployment per model, the same HTTP API.

Against an existing cluster `deploy` deploys and exits (the Serve application
lives on in the cluster; `serve shutdown` or a redeploy ends it). With
``--address local`` it starts a private one-node cluster, serves until
SIGINT/SIGTERM, then shuts Serve and the cluster down.
"""

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import CatalogOpt, DataDirOpt, EnvsDirOpt, load_settings

READY_PREFIX = "venvserve-ray: ready "

app = typer.Typer(help="Put the catalog on a Ray cluster (Ray Serve): one deployment per model, the same HTTP API.",
                  no_args_is_help=True, rich_markup_mode=None)

ModelsOpt = Annotated[Optional[str], typer.Option(
    help="comma-separated model ids (default: every model the cluster can run)", show_default=False)]
CpusOpt = Annotated[float, typer.Option(help="num_cpus of each model replica")]
GpusOpt = Annotated[float, typer.Option(help="num_gpus of each cuda replica")]
IngressReplicasOpt = Annotated[int, typer.Option(help="replicas of the HTTP ingress")]
IngressCpusOpt = Annotated[float, typer.Option(help="num_cpus of each ingress replica")]
AppNameOpt = Annotated[str, typer.Option(help="the Serve application's name")]
ModelCacheOpt = Annotated[Optional[str], typer.Option(
    help="folder on every node for downloaded weights (HF_HOME etc. below it); default: each library's own",
    show_default=False)]


def _build(catalog, envs_dir, data_dir, models, app_name, cpus, gpus, ingress_replicas, ingress_cpus,
           model_cache, pack: bool, host=None, port=None):
    try:
        from ..ray.deploy import _split, build_app
    except ImportError as exc:
        print(f"error: Ray is not installed ({exc})\n\nhint: pip install 'venvserve[ray]'", file=sys.stderr)
        raise typer.Exit(1) from None
    settings = load_settings(catalog=catalog, envs_dir=envs_dir, data_dir=data_dir, host=host, port=port)
    return build_app(models=_split(models), settings=settings, app_name=app_name, cpus_per_replica=cpus,
                     gpus_per_replica=gpus, ingress_replicas=ingress_replicas, ingress_cpus=ingress_cpus,
                     pack=pack, model_cache=model_cache)


def _print_plan(plan) -> None:
    for model_id, options in plan.deployed.items():
        actor = options["ray_actor_options"]
        env = actor["runtime_env"]
        print(f"  {model_id}: deployment {options['name']}, replicas {options['num_replicas']}, "
              f"max_ongoing_requests {options['max_ongoing_requests']}, num_cpus {actor['num_cpus']}, "
              f"num_gpus {actor.get('num_gpus', 0)}, "
              f"python {env.get('py_executable', 'the cluster’s')}"
              + (f" in {env['working_dir']}" if env.get("working_dir") else ""), flush=True)
    for model_id, reason in plan.skipped.items():
        print(f"  {model_id}: not deployed: {reason}", flush=True)


def _reported(fn):
    """The library's errors as ``venvserve-ray: message`` / ``hint:``, exit 2."""
    from ..errors import VenvserveError

    try:
        return fn()
    except VenvserveError as exc:
        print(f"venvserve-ray: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        raise typer.Exit(2) from None


@app.command()
def plan(catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
         models: ModelsOpt = None, cpus_per_replica: CpusOpt = 1.0, gpus_per_replica: GpusOpt = 1.0,
         ingress_replicas: IngressReplicasOpt = 1, ingress_cpus: IngressCpusOpt = 0.0,
         app_name: AppNameOpt = "venvserve", model_cache: ModelCacheOpt = None):
    """Print what a deploy would make: deployments, runtime_envs (no cluster needed)."""
    _, deployment_plan = _reported(lambda: _build(catalog, envs_dir, data_dir, models, app_name, cpus_per_replica,
                                                  gpus_per_replica, ingress_replicas, ingress_cpus, model_cache,
                                                  pack=False))
    _print_plan(deployment_plan)


@app.command()
def deploy(
    catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
    models: ModelsOpt = None, cpus_per_replica: CpusOpt = 1.0, gpus_per_replica: GpusOpt = 1.0,
    ingress_replicas: IngressReplicasOpt = 1, ingress_cpus: IngressCpusOpt = 0.0,
    app_name: AppNameOpt = "venvserve", model_cache: ModelCacheOpt = None,
    address: Annotated[Optional[str], typer.Option(
        help="Ray address: 'auto', 'ray://head:10001', or 'local' for a private one-node cluster "
             "(default: RAY_ADDRESS, else auto-detect)", show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Serve's HTTP host (0.0.0.0 to expose it)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Serve's HTTP port")] = 8000,
    num_cpus: Annotated[Optional[int], typer.Option(help="CPUs of a local cluster", show_default=False)] = None,
    object_store_mb: Annotated[Optional[int], typer.Option(help="object store of a local cluster",
                                                           show_default=False)] = None,
    temp_dir: Annotated[Optional[Path], typer.Option(help="Ray's temp/session folder of a local cluster",
                                                     show_default=False)] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for every deployment to run "
                                                "(env builds included)")] = 900.0,
    block: Annotated[bool, typer.Option("--block", help="stay in the foreground even on a shared cluster")] = False,
):
    """Deploy the catalog (with --address local: on a private cluster, until stopped)."""
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        print(f"error: Ray is not installed ({exc})\n\nhint: pip install 'venvserve[ray]'", file=sys.stderr)
        raise typer.Exit(1) from None

    local = address == "local"
    init: dict = {"address": address} if address else {}
    if local:
        init.update(include_dashboard=False, num_cpus=num_cpus)
        if object_store_mb:
            init["object_store_memory"] = object_store_mb * 2**20
        if temp_dir:
            init["_temp_dir"] = str(temp_dir)
    ray.init(**init)
    stop = threading.Event()  # after ray.init, which installs handlers of its own
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        application, deployment_plan = _reported(lambda: _build(
            catalog, envs_dir, data_dir, models, app_name, cpus_per_replica, gpus_per_replica, ingress_replicas,
            ingress_cpus, model_cache, pack=True, host=host, port=port))
        print(f"venvserve-ray: deploying {app_name!r} on Ray {ray.__version__}:", flush=True)
        _print_plan(deployment_plan)
        if not _run_until_ready(serve, application, app_name, timeout, stop):
            raise typer.Exit(1)
        print(READY_PREFIX + json.dumps({"url": f"http://{host}:{port}", "app": app_name,
                                         "models": list(deployment_plan.deployed)}), flush=True)
        if local or block:
            while not stop.wait(1.0):
                pass
            print("venvserve-ray: shutting down", flush=True)
    finally:
        if local:
            try:
                serve.shutdown()
            finally:
                ray.shutdown()


def _run_until_ready(serve, application, app_name: str, timeout: float, stop: threading.Event) -> bool:
    outcome: dict = {}

    def run():
        try:
            serve.run(application, name=app_name, route_prefix="/")
            outcome["ok"] = True
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    deadline = time.monotonic() + timeout
    last = 0.0
    while runner.is_alive() and time.monotonic() < deadline and not stop.is_set():
        runner.join(1.0)
        if time.monotonic() - last > 15:
            last = time.monotonic()
            print(f"venvserve-ray: {_status_line(serve, app_name)}", flush=True)
    if "error" in outcome or not outcome.get("ok"):
        why = outcome.get("error") or ("interrupted" if stop.is_set() else f"not running after {timeout:.0f}s")
        print(f"venvserve-ray: deploy failed: {why}\n  {_status_line(serve, app_name)}", file=sys.stderr, flush=True)
        return False
    return True


def _status_line(serve, app_name: str) -> str:
    try:
        status = serve.status().applications.get(app_name)
    except Exception as exc:  # the cluster's own error, shown as is
        return f"status unavailable: {exc}"
    if status is None:
        return "application not created yet"
    parts = [f"{name}={d.status.value}" + (f" ({d.message[:300]})" if d.message else "")
             for name, d in status.deployments.items()]
    return f"{status.status.value}: " + ", ".join(parts)
