"""One worker subprocess: its environment, spawn, ready line, output pump, stop.

The worker's stdin is a pipe only the gateway holds (the worker exits on
EOF: no orphans), its ready signal is one line on a second pipe, and its
stdout/stderr go through a pump that reads chunks (output.py), so no line,
however long or however many, can stall the worker or the gateway.
"""

import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from venvserve_worker import protocol

from ..system import processes
from .output import OutputPump

# Started with -I (no cwd, no PYTHON* variables, no user site on sys.path, on
# every Python 3.9+) and this bootstrap, which puts only the runtime on the path.
BOOTSTRAP = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import runpy; "
             "runpy.run_module('venvserve_worker', run_name='__main__', alter_sys=True)")
INTERPRETER_VARIABLES = ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
READY_LINE_LIMIT = 1 << 20
BOOT_FAILURE_PREFIX = getattr(protocol, "BOOT_FAILURE_PREFIX", "venvserve-worker: cannot boot: ")


def worker_environment(extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict:
    """The one environment every worker gets: the gateway's, less its secrets and
    the variables that would point the worker's interpreter somewhere else."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items()
           if k not in INTERPRETER_VARIABLES
           and not (k.startswith("VENVSERVE_") and any(word in k for word in SECRET_WORDS))}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("ORT_DISABLE_TELEMETRY", "1")
    return env


class BootError(Exception):
    """The worker exited, or never became ready, before its model was loaded."""

    def __init__(self, message: str, returncode: int | None, output: list[str]):
        super().__init__(message)
        self.returncode = returncode
        self.output = output

    @property
    def permanent(self) -> bool:
        """It will fail the same way again (missing module, bad option, no weights)."""
        return self.returncode == protocol.EXIT_BOOT_ERROR

    @property
    def reason(self) -> str:
        """One line: the worker's own last word on why, never a traceback."""
        return boot_reason(self.output) or str(self)


def boot_reason(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.startswith(BOOT_FAILURE_PREFIX):
            return line[len(BOOT_FAILURE_PREFIX):].strip()
    for line in reversed(lines):
        text = line.strip()
        if text and not line[:1].isspace() and not text.startswith("Traceback (") \
                and not text.startswith("venvserve-worker:"):
            return text
    return ""


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


class WorkerProcess:
    def __init__(self, spec: LaunchSpec, on_line: Callable[[int | None, str], None] | None = None):
        self.spec = spec
        self.proc: asyncio.subprocess.Process | None = None
        self.token = "" if spec.socket else secrets.token_urlsafe(24)
        self.port: int | None = None
        self.info: dict = {}
        self.ready_ms: float | None = None
        self.output = OutputPump(spec.model, lambda text: on_line(self.pid, text) if on_line else None)
        self._pump: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        """Its exit status once the process has ended (reaped), else None."""
        return self.proc.returncode if self.proc else None

    def tail(self, n: int = 15) -> list[str]:
        return self.output.tail(n)

    def _config(self, ready_fd: int) -> str:
        return json.dumps({
            "model": self.spec.model, "architecture": self.spec.architecture, "options": self.spec.options,
            "max_concurrency": self.spec.max_concurrency,
            "socket": str(self.spec.socket) if self.spec.socket else None,
            "host": "127.0.0.1", "port": 0, "token": self.token, "ready_fd": ready_fd,
            "parent_pid": os.getpid(),
            "input_dir": str(self.spec.input_dir) if self.spec.input_dir else None,
        })

    async def start(self, timeout: float) -> None:
        """Spawn and wait for the ready line; BootError if it exits first.

        Cancelling this (a stop during a start) kills the booting process.
        """
        if self.spec.socket and self.spec.socket.exists():
            self.spec.socket.unlink()
        read_fd, write_fd = os.pipe()
        env = worker_environment({**self.spec.env, "PYTHONPATH": str(self.spec.runtime_path),
                                  protocol.CONFIG_ENV: self._config(write_fd)})
        t0 = time.perf_counter()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.spec.python, "-I", "-u", "-c", BOOTSTRAP, str(self.spec.runtime_path),
                env=env, pass_fds=(write_fd,),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except BaseException as exc:
            os.close(read_fd)
            if isinstance(exc, OSError):
                raise BootError(f"cannot start {self.spec.python}: {exc.strerror or exc}", None, []) from exc
            raise
        finally:
            os.close(write_fd)
        self.output.name = f"{self.spec.model} {self.proc.pid}"
        self._pump = asyncio.create_task(self._read_output())
        ready = asyncio.ensure_future(_ready_line(read_fd))
        exited = asyncio.ensure_future(self.proc.wait())
        try:
            done, _ = await asyncio.wait({ready, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.signal(signal.SIGKILL)
            ready.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(exited), 5)
            raise
        line = ready.result() if ready in done else ""
        if line.startswith(protocol.READY_PREFIX):
            exited.cancel()
            self.info = json.loads(line[len(protocol.READY_PREFIX):])
            self.port = self.info.get("port")
            self.ready_ms = round((time.perf_counter() - t0) * 1000, 1)
            return
        ready.cancel()
        if not done:
            await self.kill()
            raise BootError(f"worker for {self.spec.model!r} was not ready within {timeout:.0f}s",
                            None, self.tail())
        try:  # the pipe closed without a ready line: the process is exiting, or must be made to
            await asyncio.wait_for(asyncio.shield(exited), timeout)
        except asyncio.TimeoutError:
            await self.kill()
        await self.drain_output()
        code = self.proc.returncode
        raise BootError(f"worker for {self.spec.model!r} exited with status {code} before it was ready",
                        code, self.tail())

    async def _read_output(self) -> None:
        assert self.proc and self.proc.stdout
        await self.output.pump(self.proc.stdout)

    async def drain_output(self, timeout: float = 1.0) -> None:
        """Wait (bounded) until the pump has read everything the process wrote."""
        if self._pump:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump), timeout)

    async def wait(self) -> int:
        assert self.proc
        code = await self.proc.wait()
        await self.drain_output()
        return code

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.returncode is None:
            processes.kill_group(self.proc.pid, sig)  # the worker and anything it started

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
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
            except asyncio.TimeoutError:
                self.output.note(f"ignored SIGTERM for {grace:.0f}s: sent SIGKILL")
                await self.kill()
        await self.drain_output()
        if self.spec.socket:
            self.spec.socket.unlink(missing_ok=True)
        return self.proc.returncode


async def _ready_line(fd: int) -> str:
    """The one line the worker writes on its ready pipe ("" if it closes the pipe first), read on the loop."""
    reader = asyncio.StreamReader(limit=READY_LINE_LIMIT)
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        return (await reader.readline()).decode("utf-8", "replace")
    except ValueError:  # a line over the limit is no ready line
        return ""
    finally:
        transport.close()


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
