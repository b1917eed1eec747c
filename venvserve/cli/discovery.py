"""Finding a running server: the runtime file ``DATA/server.json`` that
`venvserve serve` writes once it listens (pid, URL) and removes at exit.

The CLI looks, in order, at --server / VENVSERVE_URL, the runtime file of the
data dir, then the default address; each answer says where the server was
found, so `venvserve ocr` can tell the user why it went where it went.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..remote import RemoteServer
from ..settings import Settings

RUNTIME_FILE = "server.json"


def runtime_path(data_dir: Path) -> Path:
    return Path(data_dir) / RUNTIME_FILE


def write_runtime_file(data_dir: Path, url: str) -> Path:
    path = runtime_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{RUNTIME_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "url": url, "started_at": time.time()}))
    os.replace(tmp, path)
    return path


def remove_runtime_file(data_dir: Path) -> None:
    """Remove the file if it is still this process's (a later server may have replaced it)."""
    path = runtime_path(data_dir)
    if (read_runtime_file(path) or {}).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def read_runtime_file(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str) or not isinstance(data.get("pid"), int):
        return None
    return data


@dataclass
class Found:
    server: RemoteServer | None
    why: str  # where it was found, or why none was


def find_server(settings: Settings, url: str | None = None, probe_default: bool = True) -> Found:
    """The server this CLI should talk to, or none, with the reason either way.

    ``probe_default=False`` (a data dir was named): only a server of that data dir will do.
    """
    if url:
        return Found(RemoteServer(url, settings.api_key), "given by --server or VENVSERVE_URL")
    path = runtime_path(settings.data_dir)
    info = read_runtime_file(path)
    if info and psutil.pid_exists(info["pid"]):
        candidate = RemoteServer(info["url"], settings.api_key)
        if candidate.healthy(timeout=2):
            return Found(candidate, f"pid {info['pid']}, from {path}")
    stale = " (its runtime file is stale)" if info else ""
    if not probe_default:
        return Found(None, f"no server is running for {settings.data_dir}{stale}")
    default = RemoteServer(f"http://127.0.0.1:{settings.port}", settings.api_key)
    if default.healthy():
        return Found(default, "it answers on the default address")
    return Found(None, f"no server is running for {settings.data_dir}{stale} "
                       f"and none answers on 127.0.0.1:{settings.port}")
