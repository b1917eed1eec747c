"""GET /v1/envs/{name}/log/stream: an env's uv output, live, as server-sent events."""

import asyncio
import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from ...envs import venvinfo
from ...gateway import Gateway
from ..deps import gateway
from .envs import known

router = APIRouter(tags=["envs"])

STATUS_POLL_S = 1.0
HEARTBEAT_S = 15.0

STREAM_EXAMPLE = (
    "event: status\ndata: {\"name\": \"tesseract\", \"status\": \"not_installed\"}\n\n"
    "data: Resolved 4 packages in 1ms\n\n"
    "data: Installed 3 packages in 12ms\n\n"
    "event: status\ndata: {\"name\": \"tesseract\", \"status\": \"ready\"}\n\n"
)


def sse(data: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {line}\n" for line in (data.split("\n") or [""]))
    return (head + body + "\n").encode()


@router.get("/v1/envs/{name}/log/stream", summary="Follow an env's build log (server-sent events)",
            description="Streams every line uv prints while the env builds, as `data:` events, and the "
                        "env's status as `event: status` whenever it changes (first, at once). `tail=N` "
                        "first replays the last N lines of the install log as `event: tail`. Open it, "
                        "then `POST /v1/envs/{name}/install`; the stream stays open until the client "
                        "closes it.",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"example": STREAM_EXAMPLE}},
                             "description": "server-sent events"}})
async def stream_log(request: Request, name: str, tail: int = Query(0, ge=0, le=1000),
                     gw: Gateway = Depends(gateway)):
    gw.envs.template(known(name))  # 404 for an unknown env
    queue: asyncio.Queue = asyncio.Queue()  # unbounded: the builder's put_nowait must never fail
    gw.envs.listeners.setdefault(name, []).append(queue)
    replay = venvinfo.tail(gw.envs.root / name / "install.log", tail) if tail else []

    async def events():
        try:
            for line in replay:
                yield sse(line, "tail")
            last_status = None
            idle = 0.0
            while True:
                status = gw.envs.status(name).state.value
                if status != last_status:
                    last_status = status
                    yield sse(json.dumps({"name": name, "status": status}), "status")
                try:
                    line = await asyncio.wait_for(queue.get(), STATUS_POLL_S)
                except asyncio.TimeoutError:
                    idle += STATUS_POLL_S
                    if await request.is_disconnected():
                        return
                    if idle >= HEARTBEAT_S:
                        idle = 0.0
                        yield b": keep-alive\n\n"
                    continue
                idle = 0.0
                yield sse(line)
                while not queue.empty():  # a burst of lines goes out together
                    yield sse(queue.get_nowait())
        finally:
            listeners = gw.envs.listeners.get(name, [])
            if queue in listeners:
                listeners.remove(queue)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
