"""The gateway's HTTP client for one worker: a keep-alive pool over its socket.

aiohttp, not httpx: as a forwarding client httpx is several times slower
(docs/performance.md). Transport failures are translated here into the
exception tree, so callers see WorkerGone or GatewayTimeout, never aiohttp.
"""

import asyncio
import json

import aiohttp

from venvserve_worker import protocol

from ..errors import GatewayTimeout, VenvserveError


class WorkerGone(Exception):
    """The connection to the worker broke (it died, or is dying)."""


class WorkerClient:
    def __init__(self, socket_path: str | None, port: int | None, token: str, pool_size: int):
        if socket_path:
            connector = aiohttp.UnixConnector(path=socket_path, limit=pool_size, keepalive_timeout=300)
            self.base = "http://worker"
        else:
            connector = aiohttp.TCPConnector(limit=pool_size, keepalive_timeout=300)
            self.base = f"http://127.0.0.1:{port}"
        headers = {protocol.TOKEN_HEADER: token} if token else {}
        self.session = aiohttp.ClientSession(
            connector=connector, headers=headers, auto_decompress=False,
            json_serialize=lambda o: json.dumps(o, separators=(",", ":")),
            skip_auto_headers=("User-Agent", "Accept-Encoding"))

    async def call(self, method: str, path: str, payload: dict | None = None,
                   timeout: float | None = None) -> dict:
        try:
            async with self.session.request(
                    method, self.base + path, json=payload,
                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                body = await response.read()
                status = response.status
        except asyncio.TimeoutError:
            raise GatewayTimeout(f"the worker did not answer within {timeout:.0f}s",
                                 hint="raise --request-timeout-s, or send smaller inputs") from None
        except aiohttp.ClientError as exc:
            raise WorkerGone(str(exc) or type(exc).__name__) from exc
        try:
            data = json.loads(body)
        except ValueError:
            raise WorkerGone(f"the worker answered {status} with a body that is not JSON") from None
        if status != 200:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            raise VenvserveError(error.get("message", f"worker answered {status}"),
                                 code=error.get("code", "backend_error"), status=status)
        return data

    async def close(self) -> None:
        await self.session.close()
