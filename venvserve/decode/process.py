"""One decoder process as the gateway sees it: spawn, one request at a time, kill.

The process is ``venvserve.decode.child`` in the gateway's own interpreter,
run from a folder the gateway owns, without the gateway's ``VENVSERVE_*``
variables (keys among them). Each request has a wall-clock timeout; past it,
or when the process answers anything but a frame, it is killed. Whoever holds
a ``DecoderProcess`` is its only user (the pool hands each to one request).
"""

import asyncio
import json
import os
import sys
from pathlib import Path

from .limits import DecoderLimits
from .protocol import ProtocolError, encode, read_frame_async

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)
SPAWN_TIMEOUT_S = 30.0  # interpreter start + Pillow and pdfium imports, on a busy machine


class DecoderDied(Exception):
    """The decoder is gone (crashed, killed by a limit, killed after a timeout or garbage)."""

    def __init__(self, returncode: int | None, timed_out: bool = False, detail: str = ""):
        super().__init__(f"decoder died (status {returncode}, timed out: {timed_out}) {detail}".strip())
        self.returncode = returncode
        self.timed_out = timed_out


def child_env() -> dict:
    """The gateway's environment without its ``VENVSERVE_*`` variables, and with this package's
    folder on PYTHONPATH (a Ray ingress may find ``venvserve`` on sys.path alone)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENVSERVE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return env


class DecoderProcess:
    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.document: str | None = None  # the PDF the child holds open (mirrors the child's state)
        self.requests = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    @classmethod
    async def spawn(cls, limits: DecoderLimits, cwd: Path | None = None) -> "DecoderProcess":
        config = json.dumps({"memory_mb": limits.memory_mb, "cpu_s": limits.cpu_s})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "venvserve.decode.child", config,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
            cwd=str(cwd) if cwd else None, env=child_env())
        decoder = cls(proc)
        hello = await decoder._receive(SPAWN_TIMEOUT_S)
        if not hello.get("ready"):
            await decoder.kill()
            raise DecoderDied(proc.returncode, detail="no ready frame")
        return decoder

    async def request(self, message: dict, timeout: float) -> dict:
        """Send one request, answer its reply; DecoderDied if the process is gone or is killed."""
        self.requests += 1
        try:
            self.proc.stdin.write(encode(message))
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            await self.kill()
            raise DecoderDied(self.proc.returncode, detail="stdin closed") from None
        return await self._receive(timeout)

    async def _receive(self, timeout: float) -> dict:
        try:
            answer = await asyncio.wait_for(read_frame_async(self.proc.stdout), timeout)
        except asyncio.TimeoutError:
            await self.kill()
            raise DecoderDied(self.proc.returncode, timed_out=True) from None
        except ProtocolError as exc:
            await self.kill()
            raise DecoderDied(self.proc.returncode, detail=str(exc)) from None
        if answer is None:  # end of stream: the process exited or was killed by a limit
            raise DecoderDied(await self.proc.wait())
        if not isinstance(answer.get("ok"), bool):
            await self.kill()
            raise DecoderDied(self.proc.returncode, detail="answer without `ok`")
        return answer

    async def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        await self.proc.wait()

    async def close(self) -> None:
        """Ask it to exit (stdin closed), kill it if it does not within a second."""
        if self.proc.returncode is None and self.proc.stdin and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        await self.kill()
