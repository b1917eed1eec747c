"""`venvserve ps | load | unload | logs`: a running server, operated from the shell.

Each finds the server as `venvserve ocr` does (--server, the data dir's
runtime file, the default address) and fails with a hint when none runs.
"""

import json
import time
import urllib.parse
from typing import Annotated, Optional

import typer

from .. import console
from .common import (AdminKeyOpt, ApiKeyOpt, DataDirOpt, JsonOpt, ServerOpt, fail, load_settings, reported,
                     unknown_model)

ModelArg = Annotated[str, typer.Argument(help="model id", show_default=False)]


def _server(server: str | None, api_key: str | None, data_dir, admin_key: str | None = None):
    """The running server, reached with the admin key where one is given (it opens every route)."""
    from ..remote import RemoteServer
    from .discovery import find_server

    settings = load_settings(data_dir=data_dir, api_key=api_key, admin_key=admin_key)
    found = find_server(settings, server, probe_default=data_dir is None)
    if found.server is None:
        raise fail(f"no running server found: {found.why}",
                   "start one with `venvserve serve`, or pass --server URL")
    return RemoteServer(found.server.url, settings.admin_key or settings.api_key)


def _model_path(remote, model: str, action: str = "") -> str:
    """``/v1/models/ID[/action]`` for a model the server knows; did-you-mean otherwise."""
    known = [m["id"] for m in remote.get("/v1/models").get("data", [])]
    if model not in known:
        raise unknown_model(model, known, f"the server at {remote.url}")
    path = "/v1/models/" + urllib.parse.quote(model, safe="/")
    return f"{path}/{action}" if action else path


def ps(server: ServerOpt = None, api_key: ApiKeyOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False):
    """The server's models and workers: state, memory, idle time, queue."""
    with reported():
        remote = _server(server, api_key, data_dir)
        status = remote.get("/v1/status")
    if as_json:
        console.write(json.dumps(status, indent=2))
        return
    workers: dict[str, list[dict]] = {}
    for w in status.get("workers", []):
        workers.setdefault(w["model"], []).append(w)
    rows = []
    for model_id, m in status.get("models", {}).items():
        live = workers.get(model_id, [])
        if m.get("state") == "unloaded" and not live and not m.get("queued"):
            continue
        rows.append([model_id, m.get("state", "-"), m.get("activity") or "-",
                     " ".join(str(w["pid"]) for w in live) or "-",
                     _mb(sum(w.get("rss_mb") or 0 for w in live)) if live else "-",
                     _mb(sum(w.get("gpu_mb") or 0 for w in live)) if any(w.get("gpu_mb") for w in live) else "-",
                     _idle(live), str(sum(w.get("in_flight", 0) for w in live)), str(m.get("queued", 0)),
                     m.get("failed_reason") or ""])
    if not rows:
        console.progress(f"No model is loaded on {remote.url}")
        return
    console.table(["model", "state", "activity", "pid", "memory", "gpu", "idle", "busy", "queued", "reason"], rows,
                  caption=_budget(status.get("budget") or {}))


def _mb(value: float) -> str:
    return f"{value / 1024:.1f} GB" if value >= 1024 else f"{value:.0f} MB"


def _idle(live: list[dict]) -> str:
    if not live:
        return "-"
    idle = min(w.get("idle_s") or 0 for w in live)
    return console.duration(idle) if idle else "busy" if any(w.get("in_flight") for w in live) else "0s"


def _budget(budget: dict) -> str:
    def of(used, limit, unit=""):
        return f"{used}{unit} of {limit}{unit}" if limit and limit > 0 else f"{used}{unit} (no limit)"

    return (f"loaded: {of(budget.get('loaded_models', 0), budget.get('max_loaded_models'))}; "
            f"RAM: {of(budget.get('memory_used_mb', 0), budget.get('memory_budget_mb'), ' MB')}; "
            f"VRAM: {of(budget.get('gpu_memory_used_mb', 0), budget.get('gpu_memory_budget_mb'), ' MB')}")


def load(model: ModelArg, server: ServerOpt = None, api_key: ApiKeyOpt = None, admin_key: AdminKeyOpt = None,
         data_dir: DataDirOpt = None):
    """Start a model's workers on the server and wait until they are ready."""
    answer, seconds = _model_action(model, "load", "Loading", server, api_key, admin_key, data_dir)
    pids = ", ".join(str(pid) for pid in answer.get("pids") or [])
    suffix = f" (worker pid {pids})" if pids else ""
    console.progress(f"Loaded model {model} in {console.duration(seconds)}{suffix}")


def unload(model: ModelArg, server: ServerOpt = None, api_key: ApiKeyOpt = None, admin_key: AdminKeyOpt = None,
           data_dir: DataDirOpt = None):
    """Stop a model's workers on the server (after their in-flight work)."""
    answer, seconds = _model_action(model, "unload", "Unloading", server, api_key, admin_key, data_dir)
    stopped = answer.get("stopped_workers")
    what = f" ({console.plural(stopped, 'worker')} stopped)" if isinstance(stopped, int) else ""
    console.progress(f"Unloaded model {model} in {console.duration(seconds)}{what}")


def _model_action(model: str, action: str, doing: str, server, api_key, admin_key, data_dir) -> tuple[dict, float]:
    """POST /v1/models/{model}/{action} with a spinner; the answer and how long it took."""
    with reported():
        remote = _server(server, api_key, data_dir, admin_key)
        path = _model_path(remote, model, action)
        t0 = time.monotonic()
        with console.spinner(f"{doing} model {model} on {remote.url}"):
            answer = remote.post(path)
    return answer, time.monotonic() - t0


def logs(model: ModelArg,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new lines as they come")] = False,
         tail: Annotated[int, typer.Option("--tail", "-n", help="lines of history to print")] = 100,
         timestamps: Annotated[bool, typer.Option("--timestamps", "-t", help="prefix each line with its time "
                                                                             "and the worker's pid")] = False,
         server: ServerOpt = None, api_key: ApiKeyOpt = None, admin_key: AdminKeyOpt = None,
         data_dir: DataDirOpt = None):
    """A model's worker output, as the server keeps it (stdout and stderr of each worker)."""
    with reported():
        remote = _server(server, api_key, data_dir, admin_key)
        path = _model_path(remote, model, "logs")
        if not follow:
            lines = remote.get(f"{path}?n={tail}").get("lines", [])
            for line in lines[-tail:] if tail else []:
                _print(line, timestamps)
            return
        try:
            with remote.stream(f"{path}?follow=true&n={tail}") as stream:
                for raw in stream:
                    text = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if text.startswith("data:"):
                        try:
                            _print(json.loads(text[5:].strip()), timestamps)
                        except ValueError:
                            continue
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


def _print(line: dict, timestamps: bool) -> None:
    text = str(line.get("line", ""))
    if timestamps:
        when = time.strftime("%H:%M:%S", time.localtime(line.get("t") or 0))
        text = f"{when} [{line.get('pid', '-')}] {text}"
    console.write(text)
