"""What the planner reads from an env template: its dependencies, Python
bound and uv settings, and the packages of its lock (PEP 503 names)."""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def canonical(name: str) -> str:
    return canonicalize_name(name)


def requirement_name(req: str) -> str:
    try:
        return canonicalize_name(Requirement(req).name)
    except InvalidRequirement:
        return canonicalize_name(req.split(";")[0].strip())


@dataclass
class TemplateInfo:
    name: str
    path: Path
    dependencies: list[str]
    requires_python: str | None
    uv: dict = field(default_factory=dict)

    @property
    def direct(self) -> set[str]:
        return {requirement_name(r) for r in self.dependencies}

    def locked(self) -> dict[str, list[str]]:
        """Package name → versions in the template's own uv.lock ({} without a lock)."""
        return lock_packages(self.path / "uv.lock")


def load_template(path: Path) -> TemplateInfo:
    data = tomllib.loads((path / "pyproject.toml").read_text())
    project = data.get("project", {})
    return TemplateInfo(path.name, path, list(project.get("dependencies", [])),
                        project.get("requires-python"), data.get("tool", {}).get("uv", {}))


def read_lock(lockfile: Path) -> dict:
    try:
        return tomllib.loads(Path(lockfile).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def lock_packages(lockfile: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pkg in read_lock(lockfile).get("package", []):
        if "virtual" in pkg.get("source", {}) or "editable" in pkg.get("source", {}):
            continue
        out.setdefault(canonical(pkg["name"]), []).append(str(pkg.get("version", "")))
    return out
