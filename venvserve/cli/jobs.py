"""`venvserve jobs list|show|result|cancel|wait` and `venvserve ocr --job`: durable OCR jobs on a
running server. Data on stdout; the progress bar and messages on stderr. Ctrl-C while
following a job leaves it running on the server and says how to fetch it."""

import json
import time
import urllib.request
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import console
from ..remote import _multipart
from .common import ApiKeyOpt, DataDirOpt, JsonOpt, ServerOpt, fail, reported

app = typer.Typer(help="Durable OCR jobs on a running server: they survive restarts and report progress.",
                  no_args_is_help=True, rich_markup_mode=None)

JobArg = Annotated[str, typer.Argument(help="the job's id (as `venvserve jobs list` shows it)", show_default=False)]
FINISHED = ("succeeded", "failed", "cancelled")
JOB_PAGES = 20  # `venvserve ocr` sends a PDF with more pages than this as a job (through a server)


def _server(server, api_key, data_dir):
    from .ps import _server as find

    return find(server, api_key, data_dir)


def submit(remote, path: Path, model: str | None, fmt: str, options: dict | None = None) -> dict:
    fields = {"format": fmt}
    if model:
        fields["model"] = model
    if options:
        fields["options"] = json.dumps(options)
    body, content_type = _multipart(fields, path)
    request = urllib.request.Request(remote.url + "/v1/jobs", data=body, method="POST",
                                     headers={"Content-Type": content_type, **remote._auth()})
    return remote._send(request)


def _delete(remote, job_id: str) -> dict:
    request = urllib.request.Request(f"{remote.url}/v1/jobs/{job_id}", method="DELETE", headers=remote._auth())
    return remote._send(request)


def _download(remote, job_id: str, fmt: str, partial: bool) -> str:
    query = f"format={fmt}" + ("&partial=true" if partial else "")
    request = urllib.request.Request(f"{remote.url}/v1/jobs/{job_id}/result?{query}", headers=remote._auth())
    with remote._send(request, parse=False) as answer:
        return answer.read().decode("utf-8")


def follow(remote, job: dict) -> dict:
    """A progress bar (pages done/total, pages/s, ETA) until the job ends; the final job object."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    started, first_done = time.monotonic(), job["pages_done"]
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("pages"),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]
    with Progress(*columns, console=console.err(), transient=True) as bar:
        task = bar.add_task(f"job {job['id'][:8]}", total=job["pages_total"], completed=job["pages_done"], rate="")
        with remote.stream(f"/v1/jobs/{job['id']}/events") as events:
            kind = None
            for raw in events:
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    done = data.get("pages_done", 0)
                    seconds = time.monotonic() - started
                    rate = f"{(done - first_done) / seconds:.1f}/s" if seconds > 0 and done > first_done else ""
                    bar.update(task, completed=done, rate=rate)
                    if kind == "status" and data.get("status") in FINISHED:
                        return data
    return remote.get(f"/v1/jobs/{job['id']}")


def left_running(remote, job_id: str) -> typer.Exit:
    console.progress(f"The job goes on on the server. Follow it with `venvserve jobs wait {job_id}`, "
                     f"fetch it with `venvserve jobs result {job_id}`, stop it with `venvserve jobs cancel {job_id}`")
    return typer.Exit(130)


def ocr_as_job(remote, path: Path, model: str | None, fmt: str) -> dict:
    """`venvserve ocr FILE --job`: submit, show progress, answer the file's result like /v1/ocr."""
    job = submit(remote, path, model, fmt)
    console.progress(f"Submitted {path} as job {job['id']} ({console.plural(job['pages_total'], 'page')}) "
                     f"to {remote.url}")
    try:
        job = follow(remote, job)
    except KeyboardInterrupt:
        raise left_running(remote, job["id"]) from None
    if job["status"] != "succeeded":
        raise fail(f"job {job['id']} {job['status']}" + (f": {job['error']['message']}" if job.get("error") else ""),
                   f"`venvserve jobs show {job['id']}` has the details")
    answer = remote.get(f"/v1/jobs/{job['id']}/result")["files"][0]
    failed = [p for p in answer["pages"] if "error" in p]
    for page in failed:
        console.warning(f"{path}: page {page['page']} failed: {page['error']['message']}")
    return answer


def pdf_pages(path: Path) -> int | None:
    """The page count of a local PDF, or None when it is not one (or cannot be read here)."""
    try:
        with open(path, "rb") as f:
            if b"%PDF-" not in f.read(1024):
                return None
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(path))
        try:
            return len(pdf)
        finally:
            pdf.close()
    except Exception:
        return None


# -- commands -------------------------------------------------------------------


@app.command("list")
def list_jobs(status: Annotated[Optional[str], typer.Option(help="only jobs in this status")] = None,
              limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
              server: ServerOpt = None, api_key: ApiKeyOpt = None, data_dir: DataDirOpt = None,
              as_json: JsonOpt = False):
    """Jobs on the server, newest first."""
    with reported():
        remote = _server(server, api_key, data_dir)
        query = f"?limit={limit}" + (f"&status={status}" if status else "")
        jobs = remote.get(f"/v1/jobs{query}")["data"]
    if as_json:
        console.write(json.dumps(jobs, indent=2))
        return
    if not jobs:
        console.progress("No jobs on the server")
        return
    console.table(["ID", "STATUS", "MODEL", "PAGES", "FILES", "CREATED"], [
        [j["id"], j["status"], j["model"], _pages(j), ", ".join(f["name"] for f in j["files"]),
         (j["created_at"] or "")[:19].replace("T", " ")] for j in jobs])


@app.command()
def show(job_id: JobArg, server: ServerOpt = None, api_key: ApiKeyOpt = None, data_dir: DataDirOpt = None,
         as_json: JsonOpt = False):
    """One job: status, progress, times."""
    with reported():
        job = _server(server, api_key, data_dir).get(f"/v1/jobs/{job_id}")
    if as_json:
        console.write(json.dumps(job, indent=2))
        return
    for key in ("id", "status", "model", "format", "created_at", "started_at", "finished_at"):
        console.write(f"{key + ':':13}{job.get(key) or '–'}")
    console.write(f"{'pages:':13}{_pages(job)}")
    for f in job["files"]:
        console.write(f"{'file:':13}{f['name']} ({f['pages_done']}/{f['pages_total']} pages"
                      f"{', %d failed' % f['pages_failed'] if f['pages_failed'] else ''})")
    if job.get("error"):
        console.write(f"{'error:':13}{job['error']['message']}")


@app.command()
def result(job_id: JobArg,
           fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="text or markdown (one document)")] = None,
           partial: Annotated[bool, typer.Option(help="the pages done so far, if it has not finished")] = False,
           server: ServerOpt = None, api_key: ApiKeyOpt = None, data_dir: DataDirOpt = None,
           as_json: JsonOpt = False):
    """A finished job's result: its text on stdout (or --json, per file and page)."""
    with reported():
        remote = _server(server, api_key, data_dir)
        if as_json:
            query = "?partial=true" if partial else ""
            console.write(json.dumps(remote.get(f"/v1/jobs/{job_id}/result{query}"), indent=2, ensure_ascii=False))
            return
        if fmt is None:
            fmt = remote.get(f"/v1/jobs/{job_id}")["format"]
        console.write(_download(remote, job_id, fmt, partial).rstrip("\n"))


@app.command()
def cancel(job_id: JobArg, server: ServerOpt = None, api_key: ApiKeyOpt = None, data_dir: DataDirOpt = None):
    """Cancel a queued or running job; delete a finished one (with its result)."""
    with reported():
        job = _delete(_server(server, api_key, data_dir), job_id)
    console.progress(f"Deleted job {job_id}" if job.get("deleted") else f"Cancelled job {job_id}")


@app.command()
def wait(job_id: JobArg, server: ServerOpt = None, api_key: ApiKeyOpt = None, data_dir: DataDirOpt = None):
    """Follow a job with a progress bar until it ends; exit 0 only if it succeeded."""
    with reported():
        remote = _server(server, api_key, data_dir)
        job = remote.get(f"/v1/jobs/{job_id}")
        try:
            job = follow(remote, job) if job["status"] not in FINISHED else job
        except KeyboardInterrupt:
            raise left_running(remote, job_id) from None
    console.progress(f"Job {job_id} {job['status']}: {_pages(job)} pages")
    if job["status"] != "succeeded":
        raise typer.Exit(1)


def _pages(job: dict) -> str:
    failed = f" ({job['pages_failed']} failed)" if job.get("pages_failed") else ""
    return f"{job['pages_done']}/{job['pages_total']}{failed}"
