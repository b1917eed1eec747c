"""`venvserve ocr`: text on stdout, progress on stderr; through a running
server when one is found (on any port, by its runtime file), else the model
runs in this process. Either way the CLI says which, and why."""

import asyncio
import enum
import json
import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import console
from ..settings import Settings
from .common import (ApiKeyOpt, CatalogOpt, DataDirOpt, EnvsDirOpt, ServerOpt, fail, reported, settings_for,
                     unknown_model)

# Errors about one input file: a multi-file run reports them and goes on.
FILE_ERRORS = {"empty_file", "unsupported_media_type", "invalid_image", "invalid_pdf", "too_many_pages",
               "file_too_large", "image_too_large", "document_too_complex"}


class Format(str, enum.Enum):
    text = "text"
    markdown = "markdown"


def ocr(
    files: Annotated[list[Path], typer.Argument(help="images (PNG, JPEG, WebP, TIFF, BMP) or PDFs",
                                                show_default=False)],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="model id (default: the catalog's first)",
                                                 show_default=False)] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or markdown")] = Format.text,
    server: ServerOpt = None,
    local: Annotated[bool, typer.Option("--local", help="never use a server: run the model in this process")] = False,
    api_key: ApiKeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file (JSON Lines)")] = False,
    job: Annotated[bool, typer.Option("--job", help="submit each file as a durable job on the server, with a "
                                      "progress bar; Ctrl-C leaves it running (PDFs of more than 20 pages "
                                      "go as jobs anyway)")] = False,
    catalog: CatalogOpt = None,
    envs_dir: EnvsDirOpt = None,
    data_dir: DataDirOpt = None,
):
    """OCR images and PDFs: text on stdout, progress on stderr.

    Through a running server when one is found (--server, VENVSERVE_URL, the
    runtime file `venvserve serve` writes in the data dir, or the default
    address); otherwise in this process: the model's env is built if needed
    and its worker started for this run. --catalog or --envs-dir imply an
    in-process run; with --data-dir only a server of that data dir is used.
    A line on stderr says which it did, and why.
    """
    with reported():
        for path in files:
            if not path.is_file():
                what = "is a directory" if path.is_dir() else "does not exist"
                raise fail(f"{path} {what}", "pass image or PDF files")
        if server and local:
            raise fail("--server and --local exclude each other", "pick one")
        settings = settings_for(catalog, envs_dir, data_dir, api_key=api_key)
        remote = _choose(settings, server, local, forced_local=bool(catalog or envs_dir),
                         probe_default=data_dir is None)
        printer = OcrPrinter(files, as_json)
        started = time.monotonic()
        if job and remote is None:
            raise fail("--job needs a running server: jobs live there", "start one with `venvserve serve`")
        if remote is not None:
            _ocr_remote(remote, files, model, fmt.value, printer, job)
        else:
            asyncio.run(_ocr_local(settings, files, model, fmt.value, printer))
        printer.summary(time.monotonic() - started)
    if printer.failures:
        raise typer.Exit(1)


def _choose(settings: Settings, url: str | None, local: bool, forced_local: bool, probe_default: bool):
    """The server to use, or None for an in-process run; one line on stderr says which and why."""
    from .discovery import find_server

    if local:
        console.progress("Running the model in this process (--local)")
        return None
    if forced_local and not url:
        console.progress("Running the model in this process (--catalog or --envs-dir given)")
        return None
    found = find_server(settings, url, probe_default)
    if found.server is None:
        console.progress(f"Running the model in this process: {found.why}")
        return None
    console.progress(f"Using the server at {found.server.url} ({found.why}; --local runs the model here)")
    return found.server


class OcrPrinter:
    """Each file's text on stdout (with a ``==> FILE <==`` header when several),
    a progress line per file on stderr, a summary at the end."""

    def __init__(self, files: list[Path], as_json: bool):
        self.many = len(files) > 1
        self.as_json = as_json
        self.done = 0
        self.pages = 0
        self.failures = 0
        self.printed = False

    def result(self, path: Path, result: dict, seconds: float) -> None:
        pages = len(result.get("pages") or [None])
        self.done += 1
        self.pages += pages
        console.progress(f"OCR'd {console.plural(pages, 'page')} of {path} with {result.get('model')} "
                         f"in {console.duration(seconds)}")
        if self.as_json:
            console.write(json.dumps({"file": str(path), **result}, ensure_ascii=False))
            return
        if self.many:
            console.write(("\n" if self.printed else "") + f"==> {path} <==")
        console.write(result.get("text", ""))
        self.printed = True

    def failed(self, path: Path, exc) -> None:
        self.failures += 1
        console.error(f"{path}: {exc.message}", exc.hint)

    def summary(self, seconds: float) -> None:
        if self.many:
            failed = f", {self.failures} failed" if self.failures else ""
            console.progress(f"OCR'd {console.plural(self.done, 'file')} ({console.plural(self.pages, 'page')}) "
                             f"in {console.duration(seconds)}{failed}")


def _ocr_remote(remote, files: list[Path], model: str | None, fmt: str, printer: OcrPrinter,
                job: bool = False) -> None:
    from ..errors import VenvserveError
    from . import jobs

    for path in files:
        t0 = time.monotonic()
        try:
            pages = None if job else jobs.pdf_pages(path)
            if job or (pages or 0) > jobs.JOB_PAGES:
                if not job:
                    console.progress(f"{path} has {pages} pages: sending it as a job, which survives a restart "
                                     "of the server (--job does this for any file)")
                result = jobs.ocr_as_job(remote, path, model, fmt)
            else:
                with console.spinner(f"OCR {path} on {remote.url}"):
                    result = remote.ocr(path, model, fmt)
        except VenvserveError as exc:
            if exc.code == "model_not_found":
                raise _unknown_on_server(remote, model) from None
            if exc.code not in FILE_ERRORS:
                raise
            printer.failed(path, exc)
            continue
        printer.result(path, result, time.monotonic() - t0)


def _unknown_on_server(remote, model: str | None):
    from ..errors import VenvserveError

    try:
        known = [m["id"] for m in remote.get("/v1/models").get("data", [])]
    except VenvserveError:
        known = []
    return unknown_model(model, known, f"the server at {remote.url}")


async def _ocr_local(settings: Settings, files: list[Path], model: str | None, fmt: str,
                     printer: OcrPrinter) -> None:
    from .. import availability
    from ..errors import Unavailable, VenvserveError
    from ..gateway import Gateway
    from .envs import build_env

    gw = Gateway(settings)
    model_id = model or gw.catalog.default
    if gw.catalog.get(model_id) is None:
        raise unknown_model(model_id, [m.id for m in gw.catalog], str(gw.catalog.path))
    spec = gw.catalog.get(model_id)
    ok, reason = availability.check(spec, gw.envs)
    if not ok:
        cause, _, hint = (reason or "").partition("; ")
        raise Unavailable(f"model {model_id!r} is not available: {cause}", code="model_unavailable",
                          hint=hint or "`venvserve doctor` checks what this machine has")
    await gw.start(jobs=False)
    try:
        if spec.python_env:
            await build_env(gw.envs, spec.python_env)
        t0 = time.monotonic()
        with console.spinner(f"Loading model {model_id}"):
            workers = await gw.supervisor.load(model_id)
        pids = ", ".join(str(w.pid) for w in workers)
        console.progress(f"Loaded model {model_id} in {console.duration(time.monotonic() - t0)} "
                         f"(worker pid {pids})")
        for path in files:
            t0 = time.monotonic()
            work_dir = gw.new_request_dir()
            try:
                spooled = _spool(path, work_dir)
                with console.spinner(f"OCR {path}"):
                    result = await gw.ocr(spooled, spooled.stat().st_size, model_id, fmt, work_dir=work_dir)
            except VenvserveError as exc:
                if exc.code not in FILE_ERRORS:
                    raise
                printer.failed(path, exc)
                continue
            finally:
                shutil.rmtree(work_dir, ignore_errors=True)
            printer.result(path, result, time.monotonic() - t0)
    finally:
        await gw.stop()


def _spool(path: Path, work_dir: Path) -> Path:
    """Put the file where workers may read it (the spool): a hard link, else a copy."""
    target = work_dir / ("input" + "".join(path.suffixes[-1:]))
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return target
