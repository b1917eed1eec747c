"""Server settings: defaults, then ``VENVSERVE_*`` variables, then CLI flags."""

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_DATA_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "venvserve"


def _project_catalog() -> Path:
    # A source checkout's models.json sits next to the package; an installed
    # wheel falls back to the working directory.
    here = Path(__file__).resolve().parent.parent / "models.json"
    return here if here.exists() else Path("models.json")


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    catalog: Path = field(default_factory=_project_catalog)
    envs_dir: Path | None = None  # default: envs/ beside the catalog
    data_dir: Path = DEFAULT_DATA_DIR
    default_model: str | None = None  # default: the first model in the catalog
    max_upload_mb: float = 50.0
    request_timeout_s: float = 300.0
    load_timeout_s: float = 600.0
    idle_timeout_s: float = 600.0
    max_loaded_models: int = 0  # 0 = no limit
    memory_budget_mb: int = 0  # 0 = no limit
    gpu_memory_budget_mb: int = -1  # -1 = from NVML when a GPU is present, else no limit
    max_queue: int = 64
    queue_timeout_s: float = 120.0
    worker_transport: str = "unix"  # or "tcp" (127.0.0.1 + per-worker token)
    stop_grace_s: float = 10.0
    health_interval_s: float = 10.0  # how often each worker's /healthz is asked
    health_timeout_s: float = 5.0  # two missed answers in a row: the worker is replaced
    pdf_dpi: int = 200
    max_pdf_pages: int = 200
    log_format: str = "text"
    log_level: str = "info"
    api_key: str | None = None
    admin_key: str | None = None

    @property
    def templates_dir(self) -> Path:
        return self.envs_dir or self.catalog.resolve().parent / "envs"

    @classmethod
    def load(cls, **overrides) -> "Settings":
        """Defaults < environment (VENVSERVE_NAME) < explicit overrides (not None)."""
        values = {}
        for f in fields(cls):
            raw = os.environ.get(f"VENVSERVE_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("catalog", "envs_dir", "data_dir"):
            if isinstance(values.get(key), str):
                values[key] = Path(values[key])
        return cls(**values)


def _convert(kind, raw: str):
    """A VENVSERVE_* value as the field's type (``int``, ``float``, ``Path | None``, ``str``...)."""
    name = getattr(kind, "__name__", None) or str(kind)
    if kind is int or name == "int":
        return int(raw)
    if kind is float or name == "float":
        return float(raw)
    if "Path" in str(kind):
        return Path(raw).expanduser()
    return raw
