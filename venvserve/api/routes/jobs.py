"""/v1/jobs: long OCR work in the background, durable across restarts, with progress."""

import asyncio
import json
import shutil

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from ...errors import BadRequest
from ...gateway import Gateway
from ...ocr import parse_options
from ...jobs.model import JobStatus, is_finished
from .. import examples as ex
from ..deps import gateway
from ...uploads import UploadLimits, UploadParser, receive_upload

router = APIRouter(tags=["jobs"])

KEEPALIVE_S = 15.0
DOWNLOADS = {"text/plain": "text", "text/markdown": "markdown"}
MEDIA = {"text": "text/plain; charset=utf-8", "markdown": "text/markdown; charset=utf-8"}

JOB_EXAMPLE = {
    "id": "3f0c2a9e8b7d4c1fa6e5d4c3b2a19080", "object": "job", "status": "running", "model": "rapidocr",
    "format": "text", "created_at": "2026-01-01T12:00:00.000+00:00",
    "started_at": "2026-01-01T12:00:00.150+00:00", "finished_at": None,
    "files": [{"name": "scan.pdf", "pages_total": 36, "pages_done": 12, "pages_failed": 0}],
    "pages_total": 36, "pages_done": 12, "pages_failed": 0,
}
RESULT_EXAMPLE = {
    "id": JOB_EXAMPLE["id"], "status": "succeeded", "model": "rapidocr", "format": "text",
    "pages_total": 2, "pages_done": 2, "pages_failed": 1,
    "files": [{"name": "scan.pdf", "model": "rapidocr", "format": "text", "text": "Page one",
               "pages": [{"page": 1, "text": "Page one"},
                         {"page": 2, "error": {"code": "worker_crashed", "message": "… (tried 4 times)"}}]}],
}


def _jobs(gw: Gateway):
    return gw.jobs


def _error(code: str, message: str) -> dict:
    return {"description": code, "content": {"application/json": {
        "example": {"error": {"code": code, "message": message, "hint": "what to do about it"}}}}}


def _responses(example, *statuses: int, ok: int = 200) -> dict:
    own = {404: _error("job_not_found", "no job '3f0c…' on this server"),
           409: _error("job_not_finished", "job 3f0c… is running (12 of 36 pages done)"),
           507: _error("jobs_quota_exceeded", "the job's files do not fit in the jobs' disk quota")}
    out = ex.responses(example, *(s for s in statuses if s not in own))
    out.update({s: own[s] for s in statuses if s in own})
    if ok != 200:
        out[ok] = out.pop(200)
    return out


@router.post("/v1/jobs", status_code=202, summary="Submit an OCR job",
             description="multipart form like `POST /v1/ocr`: one or several `file` parts (images or PDFs), "
                         "optional `model`, "
                         "`format` and `options`. Checked at once (the same errors as `/v1/ocr`), then queued: "
                         "answers **202** with `Location: /v1/jobs/{id}` and the job object.",
             responses=_responses(JOB_EXAMPLE, 400, 413, 415, 429, 507, ok=202))
async def submit(request: Request, gw: Gateway = Depends(gateway)):
    jobs = _jobs(gw)
    job_id, job_dir = jobs.new_job()
    try:
        upload = await receive_upload(request, job_dir, UploadLimits.from_settings(gw.settings),
                                      parser_class=EveryFile)
        view = await jobs.submit(job_id, job_dir, upload.files, upload.fields.get("model") or None,
                                 upload.fields.get("format") or "text", parse_options(upload.fields.get("options")))
    except BaseException:
        shutil.rmtree(job_dir, ignore_errors=True)
        raise
    return JSONResponse(view, status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})


class EveryFile(UploadParser):
    """Spools every ``file`` part, not only the first: a job may take several files."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spooled: list[tuple] = []  # (name, path, size) of each file part received whole

    def _part_end(self):
        whole = self.part.get("file")
        super()._part_end()
        if whole:  # the next file part is spooled afresh
            self.spooled.append((self.upload.filename or "upload", self.upload.path, self.upload.size))
            self.upload.path, self.upload.filename, self.upload.size = None, None, 0

    def finish(self):
        if self.spooled and self.upload.path is None:
            self.upload.filename, self.upload.path, self.upload.size = self.spooled[-1]
        upload = super().finish()
        upload.files = self.spooled  # what the job takes: every file, in the order sent
        return upload

    def abort(self):
        super().abort()
        for _, path, _ in self.spooled:
            path.unlink(missing_ok=True)


@router.get("/v1/jobs", summary="List jobs, newest first",
            description="`status` filters, `limit` (1–100) pages, `cursor` is the `next_cursor` of the "
                        "previous page.",
            responses=_responses({"object": "list", "data": [JOB_EXAMPLE], "next_cursor": None}, 400))
async def list_jobs(status: JobStatus | None = None, limit: int = Query(20, ge=1, le=100),
                    cursor: str | None = None, gw: Gateway = Depends(gateway)):
    if cursor is not None and not cursor.isdigit():
        raise BadRequest("`cursor` is not one this server gave out", code="invalid_cursor")
    data, next_cursor = _jobs(gw).listing(status.value if status else None, limit,
                                          int(cursor) if cursor else None)
    return {"object": "list", "data": data, "next_cursor": str(next_cursor) if next_cursor else None}


@router.get("/v1/jobs/{job_id}", summary="A job's status and progress",
            responses=_responses(JOB_EXAMPLE, 404))
async def get_job(job_id: str, gw: Gateway = Depends(gateway)):
    return _jobs(gw).view(job_id)


@router.get("/v1/jobs/{job_id}/result", summary="A job's result",
            description="409 `job_not_finished` until the job ends, unless `partial=true` (the pages done so "
                        "far). Per file the shape `/v1/ocr` answers; a page that failed for good carries its "
                        "`error` instead of `text`. `format=text|markdown`, or `Accept: text/plain` / "
                        "`text/markdown`, downloads every file as one document.",
            responses=_responses(RESULT_EXAMPLE, 404, 409))
async def get_result(request: Request, job_id: str, partial: bool = False,
                     format: str | None = Query(None, pattern="^(text|markdown)$"),
                     gw: Gateway = Depends(gateway)):
    accept = request.headers.get("accept", "").split(",")[0].split(";")[0].strip().lower()
    fmt = format or DOWNLOADS.get(accept)
    if fmt is None:
        return _jobs(gw).result(job_id, partial)
    body = _jobs(gw).download(job_id, fmt, partial)
    name = f"{job_id}.{'md' if fmt == 'markdown' else 'txt'}"
    return PlainTextResponse(body, media_type=MEDIA[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/v1/jobs/{job_id}/events", summary="Follow a job (server-sent events)",
            description="`status` first (the job object), then one `page` event per page answered, and a "
                        "final `status` when the job ends; the stream then closes.",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"example": 'event: page\ndata: {"page": 3}\n\n'}}},
                       404: _responses({}, 404)[404]})
async def events(job_id: str, gw: Gateway = Depends(gateway)):
    jobs = _jobs(gw)
    queue = jobs.events.follow(job_id)
    try:
        view = jobs.view(job_id)
    except BaseException:
        jobs.events.leave(job_id, queue)
        raise

    async def stream():
        try:
            yield _sse("status", view)
            if is_finished(view["status"]):
                return
            while True:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield _sse(kind, data)
                if kind == "status" and is_finished(data["status"]):
                    return
        finally:
            jobs.events.leave(job_id, queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


@router.delete("/v1/jobs/{job_id}", summary="Cancel a job, or delete a finished one",
               description="A queued or running job is cancelled (its pages stop being fed at once) and its "
                           "files removed; a finished job is deleted with its results.",
               responses=_responses({**JOB_EXAMPLE, "status": "cancelled"}, 404))
async def delete_job(job_id: str, gw: Gateway = Depends(gateway)):
    return _jobs(gw).cancel_or_delete(job_id)


def install(app) -> None:
    """The job routes, and the job figures on the app's metrics registry."""
    from ...jobs.metrics import JobCollector

    app.include_router(router)
    app.state.metrics.registry.register(JobCollector(app.state.gateway))
