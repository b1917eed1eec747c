"""`venvserve envs plan`: which env templates could share one env, with the evidence."""

import json
from typing import Annotated, Optional

import typer

from .. import console
from .common import CatalogOpt, DataDirOpt, EnvsDirOpt, JsonOpt, fail, reported, settings_for, unknown_env
from .envs import app


@app.command("plan")
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
    and compares the templates' Python bounds. Sizes are on disk, as
    `venvserve envs list` shows them: measured for built envs, else estimated.
    """
    from ..envs import EnvState
    from ..envs.manager import uv_binary
    from ..envs.planner import Planner
    from .common import env_manager

    with reported():
        settings = settings_for(catalog, envs_dir, data_dir)
        envs = env_manager(settings)
        known = envs.names()
        names = names or known
        for name in names:
            if name not in known:
                raise unknown_env(name, known, str(settings.templates_dir))
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
        what = f"{console.plural(pairs, 'pair')} of env templates with uv"
        with console.spinner(f"Resolving {what}: 0/{pairs}") as spin:
            plan = planner.plan(list(names), on_pair=lambda done, total: spin.update(
                f"Resolving {what}: {done}/{total}"))
    console.progress(f"Resolved {console.plural(plan['resolved'], 'joint lock')} with uv in "
                     f"{console.duration(plan['seconds'])} ({plan['cached']} from cache)")
    if as_json:
        console.write(json.dumps(plan, indent=2))
        return
    console.write("\n".join(plan_lines(plan)))


def plan_lines(plan: dict) -> list[str]:
    envs = plan["envs"]
    lines = [f"Proposed: {console.plural(len(envs), 'env')} for {console.plural(len(plan['templates']), 'template')}"]
    for i, env in enumerate(envs, 1):
        what = "merge" if len(env["members"]) > 1 else "keep"
        size = ("" if env.get("measured") else "≈") + console.size(env["size_bytes"])
        lines.append(f"  {i}. {what} {' + '.join(env['members'])}  "
                     f"({console.plural(env['packages'], 'package')}, {size})")
        lines += [f"       note: {note}" for note in env["notes"]]
    if plan["conflicts"]:
        lines += ["", "Cannot share an env:"]
        width = max(len(" × ".join(c["members"])) for c in plan["conflicts"])
        for pair in plan["conflicts"]:
            label = " × ".join(pair["members"])
            for n, conflict in enumerate(pair["conflicts"]):
                lines.append(f"  {(label if n == 0 else ''):<{width}}  {conflict['kind']}: {conflict['detail']}")
            lines += [f"  {'':<{width}}  note: {note}" for note in pair["notes"]]
    if any(len(env["members"]) > 1 for env in envs):
        lines += ["", "The merges above resolve, so no hard conflict keeps those templates apart; making them is a "
                      "trade: one env fewer to build and lock, but every member then installs the whole merged env "
                      "(see the sizes and notes)."]
    return lines
