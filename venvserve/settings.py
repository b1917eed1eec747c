"""Server settings: defaults, then ``VENVSERVE_*`` variables, then CLI flags.

Every value is validated at start (pydantic-settings): a typo such as
``VENVSERVE_WORKER_TRANSPORT=tcpp`` stops the server with the variable named,
instead of silently meaning something else.
"""

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "venvserve"


def _project_catalog() -> Path:
    # A source checkout's models.json sits next to the package; an installed
    # wheel falls back to the working directory.
    here = Path(__file__).resolve().parent.parent / "models.json"
    return here if here.exists() else Path("models.json")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable or flag."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VENVSERVE_", extra="forbid", validate_assignment=True,
                                      env_ignore_empty=True)

    # -- where ------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    catalog: Path = Field(default_factory=_project_catalog)
    envs_dir: Path | None = None  # default: envs/ beside the catalog
    data_dir: Path = DEFAULT_DATA_DIR
    default_model: str | None = None  # default: the first model in the catalog

    # -- time -------------------------------------------------------------
    request_timeout_s: float = Field(300.0, gt=0)
    load_timeout_s: float = Field(600.0, gt=0)
    idle_timeout_s: float = Field(600.0, ge=0)  # 0 = never unload
    queue_timeout_s: float = Field(120.0, gt=0)
    stop_grace_s: float = Field(10.0, ge=0)
    health_interval_s: float = Field(10.0, gt=0)  # how often each worker's /healthz is asked
    health_timeout_s: float = Field(5.0, gt=0)  # two missed answers in a row: the worker is replaced
    build_timeout_s: float = Field(3600.0, gt=0)  # one `uv sync`, lock wait included

    # -- budget -----------------------------------------------------------
    max_loaded_models: int = Field(0, ge=0)  # 0 = no limit
    memory_budget_mb: int = Field(0, ge=0)  # 0 = no limit
    gpu_memory_budget_mb: int = Field(-1, ge=-1)  # -1 = from NVML when a GPU is present, else no limit
    min_residency_s: float = Field(5.0, ge=0)  # a model just loaded is not evicted before this (0: no damping)
    max_queue: int = Field(64, ge=0)
    worker_transport: Literal["unix", "tcp"] = "unix"  # tcp: 127.0.0.1 + per-worker token

    # -- documents --------------------------------------------------------
    pdf_dpi: int = Field(200, ge=36, le=600)
    max_pdf_pages: int = Field(200, ge=1)  # one synchronous /v1/ocr request
    max_job_pages: int = Field(5000, ge=1)  # one document of a durable job (pages are read as they are needed)
    max_page_pixels: int = Field(60_000_000, ge=1)  # a rendered page or an image larger than this: 413
    decoders: int = Field(0, ge=0)  # decoder processes; 0 = one per core, at most 4
    decoder_memory_mb: int = Field(1024, ge=64)  # address-space cap of one decoder process
    decoder_cpu_s: int = Field(60, ge=1)  # CPU seconds for one decoding step (a page, an image, opening a PDF)
    decoder_timeout_s: float = Field(60.0, gt=0)  # wall clock for one decoding step

    # -- jobs -------------------------------------------------------------
    max_jobs_queued: int = Field(100, ge=1)  # unfinished jobs (queued or running); past it: 429
    jobs_disk_quota_mb: float = Field(2048.0, gt=0)  # uploaded files of unfinished jobs, all together
    job_ttl_h: float = Field(24.0, gt=0)  # finished jobs and their results are deleted after this

    # -- request limits ---------------------------------------------------
    max_upload_mb: float = Field(50.0, gt=0)  # the whole request body: files and fields together
    max_json_mb: float = Field(16.0, gt=0)  # a JSON body (/infer, chat)
    max_json_depth: int = Field(64, ge=1)
    max_form_fields: int = Field(32, ge=1)
    max_field_kb: int = Field(64, ge=1)  # one non-file multipart field
    max_files: int = Field(16, ge=1)  # file parts in one request
    max_images_per_request: int = Field(16, ge=1)  # images in one chat request
    max_header_kb: int = Field(32, ge=1)  # request head (line + headers) on the public server
    header_timeout_s: float = Field(10.0, gt=0)  # to receive a request head

    # -- access -----------------------------------------------------------
    api_key: str | None = None
    admin_key: str | None = None
    api_key_file: Path | None = None  # one line: the key (flags show in /proc/PID/cmdline; files do not)
    admin_key_file: Path | None = None
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)  # beyond the bound address, localhost, 127.0.0.1, ::1
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)  # cross-site origins allowed to change state

    # -- logs -------------------------------------------------------------
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_lines: int = Field(2000, ge=10)  # lines kept per model in its log ring

    @field_validator("catalog", "envs_dir", "data_dir", "api_key_file", "admin_key_file", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split(cls, value):
        if isinstance(value, str):  # VENVSERVE_ALLOWED_HOSTS=a.example,b.example
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _keys_from_files(self) -> "Settings":
        for name in ("api_key", "admin_key"):
            path = getattr(self, f"{name}_file")
            if path is not None and getattr(self, name) is None:
                try:
                    key = path.read_text().strip()
                except OSError as exc:
                    raise ValueError(f"{name}_file {path}: {exc.strerror}") from None
                if not key:
                    raise ValueError(f"{name}_file {path} is empty")
                object.__setattr__(self, name, key)
        return self

    @property
    def templates_dir(self) -> Path:
        return self.envs_dir or self.catalog.resolve().parent / "envs"

    @classmethod
    def load(cls, **overrides) -> "Settings":
        """Defaults < environment (VENVSERVE_NAME) < explicit overrides (not None).

        Raises SettingsError naming each bad value and where it came from.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            return cls(**given)
        except ValidationError as exc:
            raise SettingsError(describe(exc, given)) from None


SECRET_FIELDS = ("api_key", "admin_key")


def describe(exc: ValidationError, given: dict) -> str:
    """One line per bad value, naming its flag or variable; the value is shown unless it is a key
    (a whole-model error's input is every value, keys included: never shown)."""
    lines = []
    for err in exc.errors():
        if err.get("loc"):
            name = str(err["loc"][0])
            where = f"--{name.replace('_', '-')}" if name in given else f"VENVSERVE_{name.upper()}"
            got = "" if name in SECRET_FIELDS else f" (got {err.get('input')!r})"
            lines.append(f"{where}: {err['msg']}{got}")
        else:
            lines.append(str(err["msg"]).removeprefix("Value error, "))
    return "invalid settings: " + "; ".join(lines)
