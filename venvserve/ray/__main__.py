"""``python -m venvserve.ray deploy|plan``: the catalog onto a Ray cluster.

    python -m venvserve.ray deploy --catalog models.json                 # the cluster of RAY_ADDRESS / `ray start`
    python -m venvserve.ray deploy --address local --num-cpus 2          # a private one-node cluster; blocks
    python -m venvserve.ray plan --catalog models.json                   # print deployments and runtime_envs

Against an existing cluster the command deploys and exits (the Serve
application lives on in the cluster; `serve shutdown` or a redeploy ends
it). With ``--address local`` it starts a private cluster, serves until
SIGINT/SIGTERM, then shuts Serve and the cluster down.
"""

import argparse
import json
import signal
import sys
import threading
import time

READY_PREFIX = "venvserve-ray: ready "


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m venvserve.ray", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("deploy", "plan"):
        p = sub.add_parser(name)
        p.add_argument("--catalog", help="models.json (default: VENVSERVE_CATALOG or the project's)")
        p.add_argument("--envs-dir", help="env templates (default: envs/ beside the catalog)")
        p.add_argument("--data-dir", help="where derived env projects are cached (default: VENVSERVE_DATA_DIR)")
        p.add_argument("--models", help="comma-separated model ids (default: every model the cluster can run)")
        p.add_argument("--cpus-per-replica", type=float, default=1.0, help="num_cpus of each model replica")
        p.add_argument("--gpus-per-replica", type=float, default=1.0, help="num_gpus of each cuda replica")
        p.add_argument("--ingress-replicas", type=int, default=1)
        p.add_argument("--ingress-cpus", type=float, default=0.0)
        p.add_argument("--app-name", default="venvserve")
        p.add_argument("--model-cache", help="folder on every node for downloaded weights (HF_HOME etc. "
                                             "below it); default: each library's own, per node")
        if name == "deploy":
            p.add_argument("--address", help="Ray address: 'auto', 'ray://head:10001', or 'local' for a "
                                             "private one-node cluster (default: RAY_ADDRESS, else auto-detect)")
            p.add_argument("--host", default="127.0.0.1", help="Serve's HTTP host (0.0.0.0 to expose it)")
            p.add_argument("--port", type=int, default=8000)
            p.add_argument("--num-cpus", type=int, help="CPUs of a local cluster")
            p.add_argument("--object-store-mb", type=int, help="object store of a local cluster")
            p.add_argument("--temp-dir", help="Ray's temp/session folder of a local cluster")
            p.add_argument("--timeout", type=float, default=900.0,
                           help="seconds to wait for every deployment to run (env builds included)")
            p.add_argument("--block", action="store_true", help="stay in the foreground even on a shared cluster")
    return parser


def _settings(args):
    from ..settings import Settings

    return Settings.load(catalog=args.catalog, envs_dir=args.envs_dir, data_dir=args.data_dir,
                         host=getattr(args, "host", None), port=getattr(args, "port", None))


def _build(args, pack: bool = True):
    from .deploy import _split, build_app

    return build_app(models=_split(args.models), settings=_settings(args), app_name=args.app_name,
                     cpus_per_replica=args.cpus_per_replica, gpus_per_replica=args.gpus_per_replica,
                     ingress_replicas=args.ingress_replicas, ingress_cpus=args.ingress_cpus, pack=pack,
                     model_cache=args.model_cache)


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


def _status_line(app_name: str) -> str:
    from ray import serve

    try:
        app = serve.status().applications.get(app_name)
    except Exception as exc:
        return f"status unavailable: {exc}"
    if app is None:
        return "application not created yet"
    parts = [f"{name}={d.status.value}" + (f" ({d.message[:300]})" if d.message else "")
             for name, d in app.deployments.items()]
    return f"{app.status.value}: " + ", ".join(parts)


def deploy(args) -> int:
    import ray
    from ray import serve

    local = args.address == "local"
    init = {"address": args.address} if args.address else {}
    if local:
        init.update(include_dashboard=False, num_cpus=args.num_cpus)
        if args.object_store_mb:
            init["object_store_memory"] = args.object_store_mb * 2**20
        if args.temp_dir:
            init["_temp_dir"] = args.temp_dir
    ray.init(**init)
    stop = threading.Event()  # after ray.init, which installs handlers of its own
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        app, plan = _build(args)
        print(f"venvserve-ray: deploying {args.app_name!r} on Ray {ray.__version__}:", flush=True)
        _print_plan(plan)
        outcome: dict = {}

        def run():
            try:
                serve.run(app, name=args.app_name, route_prefix="/")
                outcome["ok"] = True
            except BaseException as exc:  # reported below
                outcome["error"] = exc

        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        deadline = time.monotonic() + args.timeout
        last = 0.0
        while runner.is_alive() and time.monotonic() < deadline and not stop.is_set():
            runner.join(1.0)
            if time.monotonic() - last > 15:
                last = time.monotonic()
                print(f"venvserve-ray: {_status_line(args.app_name)}", flush=True)
        if "error" in outcome or not outcome.get("ok"):
            why = outcome.get("error") or ("interrupted" if stop.is_set() else f"not running after {args.timeout:.0f}s")
            print(f"venvserve-ray: deploy failed: {why}\n  {_status_line(args.app_name)}", file=sys.stderr, flush=True)
            return 1
        url = f"http://{args.host}:{args.port}"
        print(READY_PREFIX + json.dumps({"url": url, "app": args.app_name, "models": list(plan.deployed)}),
              flush=True)
        if local or args.block:
            while not stop.wait(1.0):
                pass
            print("venvserve-ray: shutting down", flush=True)
        return 0
    finally:
        if local:
            try:
                serve.shutdown()
            finally:
                ray.shutdown()


def plan(args) -> int:
    _, deployment_plan = _build(args, pack=False)
    _print_plan(deployment_plan)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from ..errors import VenvserveError

    try:
        return deploy(args) if args.command == "deploy" else plan(args)
    except VenvserveError as exc:
        print(f"venvserve-ray: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
