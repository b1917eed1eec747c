"""The catalog: models.json → validated model specs.

An invalid file stops start-up with one message naming the file, the model
id and the field, so the operator can fix it without reading a traceback.
"""

import difflib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import NotFound
from .names import is_env_name, is_model_id


class CatalogError(Exception):
    pass


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    task: Literal["ocr", "generic"] = "ocr"
    architecture: str
    python_env: str | None = None
    python: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # "auto": the backend runs on CUDA when torch sees a GPU, else on the CPU.
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    memory_mb: int = Field(0, ge=0)
    gpu_memory_mb: int = Field(0, ge=0)
    replicas: int = Field(1, ge=1, le=64)
    max_concurrency: int = Field(1, ge=1, le=1024)
    max_queue: int | None = Field(None, ge=0)
    idle_timeout_s: float | None = Field(None, ge=0)
    # The resolution this model's PDF pages are rendered at; None = the gateway's pdf_dpi setting.
    # Engines differ: one that loses the spaces in small type at 200 dpi keeps them at 300.
    pdf_dpi: int | None = Field(None, ge=36, le=600)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _cpu_reaches_the_backend(cls, data: Any) -> Any:
        # A GPU model's backend picks CUDA whenever torch sees a GPU: a catalog that
        # says "device": "cpu" hands that on as the option `device`, unless it sets one.
        options = data.get("options", {}) if isinstance(data, dict) else None
        if isinstance(options, dict) and data.get("device") == "cpu" and "device" not in options:
            data = {**data, "options": {**options, "device": "cpu"}}
        return data

    def render_dpi(self, default: int) -> int:
        """The dpi this model's PDF pages are rendered at: its own ``pdf_dpi``, else ``default`` (the setting)."""
        return self.pdf_dpi if self.pdf_dpi is not None else default

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not is_model_id(value):
            raise ValueError("letters, digits, '._-' and '/' between segments; no '..'")
        return value

    @field_validator("python_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None and not is_env_name(value):
            raise ValueError("an env name is letters, digits and '._-', no '/' or '..'")
        return value

    @field_validator("architecture")
    @classmethod
    def _arch(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class Catalog:
    """The models of one catalog file, in file order (the first is the default)."""

    def __init__(self, models: list[ModelSpec], path: Path | None = None, default: str | None = None):
        self.path = path
        self.models = {m.id: m for m in models}
        self.default = default or (models[0].id if models else None)
        if self.default and self.default not in self.models:
            raise CatalogError(f"default model {self.default!r} is not in {path}")

    def get(self, model_id: str) -> ModelSpec | None:
        return self.models.get(model_id)

    def require(self, model_id: str, listed_by: str = "GET /v1/models") -> ModelSpec:
        """The model's spec, or a 404 that suggests the nearest id and says where the list is."""
        spec = self.models.get(model_id)
        if spec is None:
            raise unknown_model(model_id, self.models, listed_by)
        return spec

    def __iter__(self):
        return iter(self.models.values())

    def __len__(self):
        return len(self.models)


def did_you_mean(name: str, known) -> str:
    """``did you mean 'tesseract'? `` for a near miss, else ``""``."""
    close = difflib.get_close_matches(str(name)[:200], list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def unknown_model(model_id: str, known, listed_by: str = "GET /v1/models") -> NotFound:
    return NotFound(f"unknown model {str(model_id)[:200]!r}", code="model_not_found",
                    hint=f"{did_you_mean(model_id, known)}{listed_by} lists the models of this server")


def load_catalog(path: Path, default: str | None = None) -> Catalog:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found (pass --catalog PATH)") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise CatalogError(f"{path}: the catalog must be a JSON array of model objects")
    models, seen = [], set()
    for index, entry in enumerate(raw):
        label = entry.get("id", f"#{index}") if isinstance(entry, dict) else f"#{index}"
        try:
            spec = ModelSpec.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(entry)"
            raise CatalogError(f"{path}: model {label!r}, field {where!r}: {first['msg']}") from None
        if spec.id in seen:
            raise CatalogError(f"{path}: model {spec.id!r}, field 'id': duplicate id")
        seen.add(spec.id)
        models.append(spec)
    return Catalog(models, Path(path), default)
