"""The single-hop limit: a bare FastAPI app on uvicorn (uvloop, httptools, no access log).

``POST /v1/models/echo/infer`` has the gateway's path and body, so the load
generator sends the very same bytes to both; it parses the JSON and answers
it back. ``POST /v1/ocr`` streams the request body to a file and deletes it:
the floor for row 3 (what receiving an upload over loopback HTTP costs before
any gateway work).
"""

import os
import tempfile
import uuid

from fastapi import FastAPI, Request

app = FastAPI()
SPOOL = os.environ.get("BENCH_SPOOL") or tempfile.gettempdir()


@app.post("/v1/models/echo/infer")
async def infer(request: Request):
    return await request.json()


@app.post("/v1/ocr")
async def upload(request: Request):
    path = os.path.join(SPOOL, f"bench-{uuid.uuid4().hex}.upload")
    try:
        with open(path, "wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
        return {"bytes": os.path.getsize(path)}
    finally:
        os.unlink(path)
