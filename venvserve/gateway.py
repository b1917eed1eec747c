"""The gateway's core, shared by the HTTP API and the in-process CLI:
catalog + envs + supervisor, the private runtime and spool folders, and the
OCR pipeline (classify the upload, rasterise PDFs, fan pages out to workers).
"""

import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from . import availability, media
from .catalog import Catalog, load_catalog
from .envs import EnvManager
from .errors import BadRequest, NotFound
from .settings import Settings
from .workers.supervisor import Supervisor

log = logging.getLogger("venvserve")

FORMATS = ("text", "markdown")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def private_dir(base: Path) -> Path:
    """``base/<pid>-<random>`` (one per Gateway), mode 0700; folders of dead gateways are removed."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(base, 0o700)
    for child in base.iterdir():
        pid = child.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(child, ignore_errors=True)
    mine = base / f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    mine.mkdir(mode=0o700)
    return mine


def runtime_base() -> Path:
    # Unix socket paths are limited to ~107 bytes: keep them short, not under the data dir.
    root = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(root) / f"venvserve-{os.getuid()}"


class Gateway:
    def __init__(self, settings: Settings, catalog: Catalog | None = None):
        self.settings = settings
        self.catalog = catalog or load_catalog(settings.catalog, settings.default_model)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = private_dir(runtime_base())
        self.spool = private_dir(settings.data_dir / "spool")
        self.envs = EnvManager(settings.templates_dir, settings.data_dir)
        self.supervisor = Supervisor(settings, self.catalog, self.envs, self.run_dir)
        self.envs.in_use = self.supervisor.in_use
        self.started = time.time()

    async def start(self) -> None:
        removed = await asyncio.to_thread(self.envs.clean_half_built)
        for path in removed:
            log.warning("removed a half-built env left by an earlier run: %s", path)
        await self.supervisor.start()

    async def stop(self) -> None:
        await self.supervisor.shutdown(self.settings.stop_grace_s)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.spool, ignore_errors=True)

    # -- models ------------------------------------------------------------

    def resolve_model(self, model_id: str | None) -> str:
        model_id = model_id or self.catalog.default
        if not model_id:
            raise BadRequest("no model given and the catalog has no default", code="model_required")
        if self.catalog.get(model_id) is None:
            raise NotFound(f"unknown model {model_id!r}", code="model_not_found",
                           hint="GET /v1/models lists the models of this server")
        return model_id

    def model_entry(self, model_id: str) -> dict:
        spec = self.catalog.get(model_id)
        if spec is None:
            raise NotFound(f"unknown model {model_id!r}", code="model_not_found",
                           hint="GET /v1/models lists the models of this server")
        ok, reason = availability.check(spec, self.envs)
        state = self.supervisor.model_state(model_id)
        if ok and state["state"] == "failed":
            reason = state["failed_reason"]
        env_status = None
        if spec.python_env and ok:
            env_status = self.envs.status(spec.python_env).state.value
        return {
            "id": spec.id, "object": "model", "created": int(self.started), "owned_by": "venvserve",
            "task": spec.task, "architecture": spec.architecture, "python_env": spec.python_env,
            "env_status": env_status, "device": spec.device, "replicas": spec.replicas,
            "max_concurrency": spec.max_concurrency, "default": spec.id == self.catalog.default,
            "available": ok, "reason": reason, "description": spec.description, **state,
        }

    # -- OCR ---------------------------------------------------------------

    def new_request_dir(self) -> Path:
        path = self.spool / uuid.uuid4().hex
        path.mkdir(mode=0o700)
        return path

    async def ocr(self, path: Path, size: int, model_id: str | None, fmt: str = "text",
                  options: dict | None = None, work_dir: Path | None = None,
                  disconnected=None) -> dict:
        """OCR a file already in the spool (or any file the CLI was given)."""
        t0 = time.perf_counter()
        if fmt not in FORMATS:
            raise BadRequest(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", code="invalid_format")
        model_id = self.resolve_model(model_id)
        spec = self.catalog.get(model_id)
        if spec.task != "ocr":
            raise BadRequest(f"model {model_id!r} is not an OCR model (task {spec.task!r})",
                             code="wrong_task", hint=f"use POST /v1/models/{model_id}/infer")
        kind = media.classify(path, size)
        own_dir = work_dir is None
        work_dir = work_dir or self.new_request_dir()
        try:
            if kind == "application/pdf":
                pages = self._pdf_pages(path, work_dir)
            else:
                await asyncio.to_thread(media.check_image, path)
                pages = _one(path)
            results, t1 = await self._ocr_pages(model_id, pages, fmt, options or {}, disconnected)
            t2 = time.perf_counter()
        finally:
            if own_dir:
                shutil.rmtree(work_dir, ignore_errors=True)
        texts = [{"page": i + 1, "text": r["text"]} for i, r in enumerate(results)]
        joiner = "\n\n" if fmt == "markdown" or len(texts) > 1 else ""
        return {
            "model": model_id, "format": fmt,
            "text": joiner.join(p["text"] for p in texts) if joiner else texts[0]["text"],
            "pages": texts,
            "timing_ms": {"prepare": round((t1 - t0) * 1000, 2), "inference": round((t2 - t1) * 1000, 2),
                          "total": round((t2 - t0) * 1000, 2)},
        }

    async def _pdf_pages(self, path: Path, work_dir: Path):
        """Rasterise page after page in a thread, yielding each as soon as it exists."""
        pdf, count = await asyncio.to_thread(media.open_pdf, path, self.settings.max_pdf_pages)
        try:
            for index in range(count):
                yield await asyncio.to_thread(media.render_page, pdf, index, work_dir, self.settings.pdf_dpi)
        finally:
            pdf.close()

    async def _ocr_pages(self, model_id: str, pages, fmt: str, options: dict,
                         disconnected=None) -> tuple[list[dict], float]:
        """OCR pages as they arrive: page n is being read while page n+1 is rasterised.

        One request per page, as many at once as the model's workers can run.
        Answers the pages' results in order and when the first page was ready.
        """
        spec = self.catalog.get(model_id)
        gate = asyncio.Semaphore(spec.replicas * spec.max_concurrency)

        async def one(page: Path) -> dict:
            async with gate:
                answer = await self.supervisor.infer(model_id, {
                    "task": "ocr", "images": [str(page)], "format": fmt, "options": options},
                    disconnected=disconnected)
            return answer["pages"][0]

        tasks: list[asyncio.Task] = []
        first_ready = None
        try:
            async for page in pages:
                first_ready = first_ready or time.perf_counter()
                tasks.append(asyncio.ensure_future(one(page)))
            return list(await asyncio.gather(*tasks)), first_ready
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


async def _one(path: Path):
    yield path


def parse_options(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"`options` is not valid JSON: {exc}", code="invalid_options") from None
    if not isinstance(value, dict):
        raise BadRequest("`options` must be a JSON object", code="invalid_options")
    return value
