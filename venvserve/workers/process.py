"""One worker subprocess: spawn it, wait for its ready line, stop it.

The worker's stdin is a pipe only the gateway holds (the worker exits on
EOF: no orphans), its ready signal is one line on a second pipe, and its
stdout/stderr are kept as a ring of recent lines for crash reports.
"""

import asyncio
import collections
import json
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from venvserve_worker import protocol

log = logging.getLogger("venvserve.workers")


class BootError(Exception):
    """The worker exited before it became ready."""

    def __init__(self, message: str, returncode: int | None, stderr: list[str]):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr

    @property
    def cannot_boot(self) -> bool:
        return self.returncode == protocol.EXIT_BOOT_ERROR


@dataclass
class LaunchSpec:
    model: str
    architecture: str
    python: str
    options: dict
    max_concurrency: int
    runtime_path: Path
    env: dict = field(default_factory=dict)  # extra environment variables
    socket: Path | None = None  # None: TCP on 127.0.0.1 with a token
    input_dir: Path | None = None  # the only folder whose files the worker may read as inputs


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB, from /proc; None where unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class WorkerProcess:
    def __init__(self, spec: LaunchSpec):
        self.spec = spec
        self.proc: asyncio.subprocess.Process | None = None
        self.token = "" if spec.socket else secrets.token_urlsafe(24)
        self.port: int | None = None
        self.info: dict = {}
        self.lines: collections.deque[str] = collections.deque(maxlen=60)
        self.started_at = time.time()
        self.ready_ms: float | None = None
        self._pump: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc else None

    def rss_mb(self) -> float | None:
        return rss_mb(self.pid) if self.pid else None

    def stderr_tail(self, n: int = 15) -> list[str]:
        return list(self.lines)[-n:]

    def _environment(self, ready_fd: int) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
        env.update(self.spec.env)
        env["PYTHONPATH"] = str(self.spec.runtime_path)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("ORT_DISABLE_TELEMETRY", "1")
        env[protocol.CONFIG_ENV] = json.dumps({
            "model": self.spec.model,
            "architecture": self.spec.architecture,
            "options": self.spec.options,
            "max_concurrency": self.spec.max_concurrency,
            "socket": str(self.spec.socket) if self.spec.socket else None,
            "host": "127.0.0.1",
            "port": 0,
            "token": self.token,
            "ready_fd": ready_fd,
            "parent_pid": os.getpid(),
            "input_dir": str(self.spec.input_dir) if self.spec.input_dir else None,
        })
        return env

    async def start(self, timeout: float) -> None:
        """Spawn and wait for the ready line; BootError if it exits first."""
        if self.spec.socket and self.spec.socket.exists():
            self.spec.socket.unlink()
        read_fd, write_fd = os.pipe()
        t0 = time.perf_counter()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.spec.python, "-s", "-m", "venvserve_worker",
                env=self._environment(write_fd), pass_fds=(write_fd,),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            raise BootError(f"cannot start {self.spec.python}: {exc}", None, []) from exc
        finally:
            os.close(write_fd)
        self._pump = asyncio.create_task(self._read_output())
        ready = asyncio.get_running_loop().run_in_executor(None, _read_line, read_fd)
        exited = asyncio.ensure_future(self.proc.wait())
        done, _ = await asyncio.wait({ready, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready in done and ready.result().startswith(protocol.READY_PREFIX):
            exited.cancel()
            self.info = json.loads(ready.result()[len(protocol.READY_PREFIX):])
            self.port = self.info.get("port")
            self.ready_ms = round((time.perf_counter() - t0) * 1000, 1)
            return
        if not done:
            await self.kill()
            raise BootError(f"worker for {self.spec.model!r} was not ready within {timeout:.0f}s",
                            None, self.stderr_tail())
        await self.proc.wait()
        await self._drain_output()
        code = self.proc.returncode
        raise BootError(f"worker for {self.spec.model!r} exited with status {code} before it was ready",
                        code, self.stderr_tail())

    async def _read_output(self) -> None:
        assert self.proc and self.proc.stdout
        prefix = f"[{self.spec.model} {self.proc.pid}]"
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            log.info("%s %s", prefix, line)

    async def _drain_output(self) -> None:
        if self._pump:
            try:
                await asyncio.wait_for(asyncio.shield(self._pump), 1.0)
            except asyncio.TimeoutError:
                pass

    async def wait(self) -> int:
        assert self.proc
        code = await self.proc.wait()
        await self._drain_output()
        return code

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, sig)  # the worker and anything it started
            except ProcessLookupError:
                pass

    async def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc:
            await self.proc.wait()

    async def stop(self, grace: float) -> int | None:
        """SIGTERM, wait ``grace`` seconds, then SIGKILL."""
        if not self.proc:
            return None
        if self.proc.returncode is None:
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except asyncio.TimeoutError:
                log.warning("worker %s (pid %s) ignored SIGTERM for %.0fs: sent SIGKILL",
                            self.spec.model, self.pid, grace)
                await self.kill()
        await self._drain_output()
        if self.spec.socket:
            self.spec.socket.unlink(missing_ok=True)
        return self.proc.returncode


def _read_line(fd: int) -> str:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.readline().decode("utf-8", "replace")


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (perhaps out of memory?)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    if code == protocol.EXIT_BOOT_ERROR:
        return "could not load its model"
    return f"exited with status {code}"


