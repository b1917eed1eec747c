"""The throw-away project that joins templates for one `uv lock`, and uv's
explanation when it finds no solution."""

import re

import tomli_w
from packaging.specifiers import InvalidSpecifier, Specifier

from .templates import TemplateInfo, canonical

PLATFORM = "sys_platform == 'linux' and platform_machine == 'x86_64'"


def joint_project(templates: list[TemplateInfo]) -> str:
    """A pyproject.toml with every template's dependencies, Python bounds and uv settings."""
    deps: list[str] = []
    for t in templates:
        deps += [d for d in t.dependencies if d not in deps]
    pythons = [t.requires_python for t in templates if t.requires_python]
    direct = set().union(*(t.direct for t in templates))
    # A template excludes a distribution to keep its rival out; a joint env that
    # another template needs it in must not hide it (the module check sees the clash).
    exclude = sorted({e for t in templates for e in t.uv.get("exclude-dependencies", [])
                      if canonical(e) not in direct})
    no_isolation = sorted({p for t in templates for p in t.uv.get("no-build-isolation-package", [])})
    metadata = {canonical(m["name"]): m for t in templates for m in t.uv.get("dependency-metadata", [])}
    sources = {k: v for t in templates for k, v in t.uv.get("sources", {}).items()}
    indexes = [index for t in templates for index in t.uv.get("index", [])]
    uv: dict = {"package": False, "environments": [PLATFORM]}
    if exclude:
        uv["exclude-dependencies"] = exclude
    if no_isolation:
        uv["no-build-isolation-package"] = no_isolation
    if sources:
        uv["sources"] = sources
    if metadata:
        uv["dependency-metadata"] = list(metadata.values())
    if indexes:
        uv["index"] = indexes
    project = {"name": "venvserve-plan-" + "-".join(t.name for t in templates), "version": "0",
               "requires-python": ",".join(pythons) if pythons else ">=3.8", "dependencies": deps}
    return tomli_w.dumps({"project": project, "tool": {"uv": uv}})


_CONSTRAINT = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?"  # name[extras]
                         r"\s*((?:==|>=|<=|!=|~=|<|>)\s*[0-9][\w.*+!-]*)")  # op version


def clashing_packages(message: str) -> dict[str, list[str]]:
    """From uv's explanation: packages named with two or more different constraints."""
    seen: dict[str, list[str]] = {}
    for name, constraint in _CONSTRAINT.findall(message):
        name = canonical(name)
        if name.startswith("venvserve-plan"):
            continue
        constraint = constraint.replace(" ", "").rstrip(".,")
        try:
            constraint = str(Specifier(constraint))
        except InvalidSpecifier:
            continue
        if constraint not in seen.setdefault(name, []):
            seen[name].append(constraint)
    return {name: cs for name, cs in seen.items() if len(cs) > 1}


def uv_explanation(output: str) -> list[str]:
    lines = [line.rstrip() for line in output.splitlines()]
    keep = [line for line in lines if line.strip() and not line.startswith(("Using ", "Resolved "))]
    return keep[:12]
