"""A cross-process lock on a file (flock), awaited without blocking the loop."""

import asyncio
import fcntl
import os
from pathlib import Path


class FileLock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    async def acquire(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.try_acquire():
            if loop.time() > deadline:
                raise TimeoutError(f"{self.path} is held by another process")
            await asyncio.sleep(0.1)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def is_held_elsewhere(self) -> bool:
        if self.fd is not None:
            return False
        if self.try_acquire():
            self.release()
            return False
        return True
