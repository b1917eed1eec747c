"""The gateway's core, shared by the HTTP API and the in-process CLI:
catalog + envs + supervisor + the decoder pool, the private runtime and spool
folders, and OCR requests (``venvserve.ocr``'s pipeline with the supervisor
as the "call one page" function).

This process never decodes a document: Pillow and pdfium are imported only
by the decoder processes (``venvserve.decode``).
"""

import asyncio
import errno
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from . import availability, ocr
from .catalog import Catalog, load_catalog
from .decode.limits import DecoderLimits, pool_size
from .decode.pool import DecoderPool
from .envs import EnvManager
from .errors import BadRequest, InsufficientStorage
from .settings import Settings
from .workers.supervisor import Supervisor

log = logging.getLogger("venvserve")


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
        self.decoders = DecoderPool(pool_size(settings.decoders, len(os.sched_getaffinity(0))),
                                    DecoderLimits.from_settings(settings), cwd=self.run_dir)
        self.started = time.time()

    async def start(self, jobs: bool = True) -> None:
        """``jobs=False`` for a one-off in-process run (the CLI): it must not resume a server's jobs."""
        removed = await asyncio.to_thread(self.envs.clean_half_built)
        for path in removed:
            log.warning("removed a half-built env left by an earlier run: %s", path)
        await self.supervisor.start()
        if jobs:
            from .jobs import Jobs  # durable OCR jobs, resumed where they stopped
            self.jobs = await Jobs.open(self)

    async def stop(self) -> None:
        if hasattr(self, "jobs"):
            await self.jobs.stop(self.settings.stop_grace_s)
        await self.supervisor.shutdown(self.settings.stop_grace_s)
        await self.decoders.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.spool, ignore_errors=True)

    # -- models ------------------------------------------------------------

    def resolve_model(self, model_id: str | None) -> str:
        model_id = model_id or self.catalog.default
        if not model_id:
            raise BadRequest("no model given and the catalog has no default", code="model_required")
        self.catalog.require(model_id)
        return model_id

    def model_entry(self, model_id: str) -> dict:
        spec = self.catalog.require(model_id)
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
            # What this model's PDF pages are rendered at (its own pdf_dpi, else the setting).
            "pdf_dpi": spec.render_dpi(self.settings.pdf_dpi) if spec.task == "ocr" else None,
            "available": ok, "reason": reason, "description": spec.description, **state,
        }

    # -- OCR ---------------------------------------------------------------

    def new_request_dir(self) -> Path:
        path = self.spool / uuid.uuid4().hex
        try:
            path.mkdir(mode=0o700)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage("the server's disk is full; the upload cannot be stored",
                                          code="disk_full", hint="retry later") from None
            raise
        return path

    async def ocr(self, path: Path, size: int, model_id: str | None, fmt: str = "text",
                  options: dict | None = None, work_dir: Path | None = None,
                  disconnected=None) -> dict:
        """OCR a file already in the spool (or any file the CLI was given)."""
        ocr.check_format(fmt)
        model_id = self.resolve_model(model_id)
        spec = self.catalog.get(model_id)
        if spec.task != "ocr":
            raise BadRequest(f"model {model_id!r} is not an OCR model (task {spec.task!r})",
                             code="wrong_task", hint=f"use POST /v1/models/{model_id}/infer")

        async def call(request: dict) -> dict:
            return await self.supervisor.infer(model_id, request, disconnected=disconnected)

        own_dir = work_dir is None
        work_dir = work_dir or self.new_request_dir()
        try:
            return await ocr.run(self.decoders, call, path, size, work_dir, model_id=model_id, fmt=fmt,
                                 options=options or {}, dpi=spec.render_dpi(self.settings.pdf_dpi),
                                 max_pages=self.settings.max_pdf_pages,
                                 concurrency=spec.replicas * spec.max_concurrency, disconnected=disconnected)
        finally:
            if own_dir:
                shutil.rmtree(work_dir, ignore_errors=True)
