"""One build step (``uv sync``, ``post_install.sh``) as a subprocess: its
output to the build log line by line, bounded in time, and stopped with its
whole process group when the time is up or the caller gives up."""

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from ..errors import EnvBuildFailed
from ..system.processes import die_with_parent, kill_group

log = logging.getLogger("venvserve.envs")


def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise EnvBuildFailed("uv is not installed", hint="pip install uv") from None
        return found


def uv_env(venv: Path) -> dict:
    """The environment of a build: the target venv, no inherited Python settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


async def run_step(name: str, cmd: list[str], env: dict, logfile: Path, deadline: float,
                   on_line: Callable[[str], None], cwd=None) -> tuple[bool, str]:
    """Run one step until it exits or ``deadline`` (time.monotonic()) passes: (ok, why not)."""
    # Its own session (process group), so that whatever the step started dies with it.
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        preexec_fn=die_with_parent, start_new_session=True)
    last = [""]

    async def pump():
        with open(logfile, "a") as out:
            async for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                out.write(line + "\n")
                out.flush()
                if line:
                    last[0] = line
                    log.info("env %s: %s", name, line)
                    on_line(line)

    reader = asyncio.ensure_future(pump())
    step = " ".join(Path(part).name for part in cmd[:2])
    try:
        code = await asyncio.wait_for(proc.wait(), max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        kill_group(proc.pid)
        await proc.wait()
        with open(logfile, "a") as out:
            out.write(f"=== `{step}` stopped: the build's time limit ran out\n")
        return False, f"`{step}` did not finish within the build time limit (build_timeout_s); it was stopped"
    finally:
        kill_group(proc.pid)
        try:
            await asyncio.wait_for(reader, 5)
        except asyncio.TimeoutError:
            reader.cancel()
    return code == 0, (f"`{step}` exited {code}: {last[0]}" if code else "")
