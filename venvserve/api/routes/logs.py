"""GET /v1/models/{id}/logs: what a model's workers printed, as JSON lines or live server-sent events."""

import asyncio
import json

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from ...gateway import Gateway
from ..deps import gateway

router = APIRouter(tags=["models"])

HEARTBEAT_S = 15.0
LOGS_EXAMPLE = {"model": "echo", "lines": [
    {"t": 1767225600.125, "pid": 4344, "line": "venvserve-worker: echo ready in 12 ms"},
    {"t": 1767225601.5, "pid": 4344, "line": "Downloading weights: 100%"}]}
STREAM_EXAMPLE = ('data: {"t": 1767225600.125, "pid": 4344, "line": "venvserve-worker: echo ready in 12 ms"}\n\n'
                  ": keep-alive\n\n")


def view(line) -> dict:
    """One log line in the API's shape (``LogLine`` of the supervisor's ring)."""
    return {"t": round(line.time, 3), "pid": line.pid, "line": line.text}


@router.get("/v1/models/{model_id:path}/logs", summary="A model's worker output (JSON, or live with follow=true)",
            description="The last `n` lines the model's workers wrote to stdout and stderr, newest last. "
                        "With `follow=true` the answer is a stream of server-sent events, one "
                        "`data: {\"t\", \"pid\", \"line\"}` per line: the last `n` first, then each new line "
                        "as it is written, until the client closes it. Needs the admin key when the server "
                        "has one.",
            responses={200: {"content": {"application/json": {"example": LOGS_EXAMPLE},
                                         "text/event-stream": {"example": STREAM_EXAMPLE}},
                             "description": "log lines"},
                       404: {"content": {"application/json": {"example": {"error": {
                           "code": "model_not_found", "message": "unknown model 'nope'"}}}},
                             "description": "model_not_found"}})
async def model_logs(model_id: str, request: Request, n: int = Query(200, ge=0, le=100_000),
                     follow: bool = False, gw: Gateway = Depends(gateway)):
    model_id = gw.resolve_model(model_id)
    if not follow:
        return {"model": model_id, "lines": [view(line) for line in gw.supervisor.logs(model_id, n)]}
    return StreamingResponse(_events(gw.supervisor.follow_logs(model_id, n)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(lines):
    """SSE from an async iterator of log lines, with a comment line when nothing was said for a while."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

    async def pump():
        async for line in lines:
            await queue.put(line)

    task = asyncio.ensure_future(pump())
    try:
        while True:
            try:
                line = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except asyncio.TimeoutError:
                yield b": keep-alive\n\n"
                continue
            out = [line]
            while not queue.empty():  # a burst of lines goes out together
                out.append(queue.get_nowait())
            yield b"".join(b"data: " + json.dumps(view(x)).encode() + b"\n\n" for x in out)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await lines.aclose()
