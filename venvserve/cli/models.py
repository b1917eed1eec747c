"""`venvserve models ...`: the models of the catalog, and their weights."""

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Annotated

import typer

from .. import console
from ..settings import Settings
from .common import CatalogOpt, DataDirOpt, EnvsDirOpt, JsonOpt, env_manager, fail, reported, settings_for, unknown_model

app = typer.Typer(help="The models of the catalog.", no_args_is_help=True, rich_markup_mode=None)
PULL_MARKER = "VENVSERVE-PULL "


@app.command("list")
def models_list(catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None,
                as_json: JsonOpt = False):
    """Every model: architecture, env and its status, available or why not."""
    from .. import availability
    from ..catalog import load_catalog

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


@app.command("pull")
def models_pull(model_id: Annotated[str, typer.Argument(help="model id", show_default=False)],
                force: Annotated[bool, typer.Option("--force", help="download even if already cached")] = False,
                catalog: CatalogOpt = None, envs_dir: EnvsDirOpt = None, data_dir: DataDirOpt = None):
    """Download a model's weights into the data dir's model caches (where a hub is reachable).

    Runs the backend's own download code in the model's env (built first if
    needed), with HF_HOME, MODELSCOPE_CACHE and PADDLE_PDX_CACHE_HOME pointing
    into the data dir, the same caches the workers read. The server can then
    load the model offline.
    """
    from .. import availability
    from ..catalog import load_catalog

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        models = load_catalog(settings.catalog, settings.default_model)
        spec = models.get(model_id)
        if spec is None:
            raise unknown_model(model_id, [m.id for m in models], str(models.path))
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
    from .envs import build_env

    if spec.python:
        return spec.python
    if spec.python_env:
        status = await build_env(env_manager(settings), spec.python_env)
        return str(status.python)
    return sys.executable


def _run_pull(settings: Settings, spec, python: str) -> dict | None:
    """The worker runtime's pull module in the model's interpreter; its last marker line is the answer."""
    from .. import availability
    from ..workers.runtime_path import runtime_path

    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
           and not k.endswith("_KEY")}
    env.update(availability.cache_env(settings.data_dir))
    env["VENVSERVE_DATA_DIR"] = str(settings.data_dir)
    env["PYTHONPATH"] = str(runtime_path(settings.data_dir))
    env["PYTHONUNBUFFERED"] = "1"
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the pull's working dir, and where its caches go
    proc = subprocess.run([python, "-s", "-m", "venvserve_worker.pull", spec.architecture,
                           json.dumps(spec.options)], env=env, cwd=settings.data_dir, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=None, text=True)
    marker = [line for line in proc.stdout.splitlines() if line.startswith(PULL_MARKER)]
    if proc.returncode != 0 or not marker:
        raise fail(f"downloading the weights of {spec.id} failed (exit {proc.returncode}); the output is above",
                   "is the hub reachable from here (proxy, HF_ENDPOINT, PADDLE_PDX_MODEL_SOURCE)? "
                   "`venvserve models list` shows where the weights are looked for")
    return json.loads(marker[-1][len(PULL_MARKER):])
