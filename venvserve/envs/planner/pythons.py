"""Python bounds: which CPython 3.x minors a ``requires-python`` admits (PEP 440)."""

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet

PYTHON_MINORS = range(8, 16)  # 3.8 .. 3.15: the candidates for a Python bound
UPPER = ("<", "<=", "==", "~=", "===")


def _specifiers(spec: str | None) -> SpecifierSet:
    valid = []
    for clause in (spec or "").split(","):
        try:
            valid.append(str(Specifier(clause.strip())))
        except InvalidSpecifier:
            continue  # an unreadable clause constrains nothing
    return SpecifierSet(",".join(valid))


def allowed_minors(spec: str | None) -> set[int]:
    """The minors with at least one patch release the specifier admits."""
    specifiers = _specifiers(spec)
    return {m for m in PYTHON_MINORS if any(f"3.{m}.{p}" in specifiers for p in range(40))}


def describe_minors(minors: set[int]) -> str:
    if not minors:
        return "no Python version"
    lo, hi = min(minors), max(minors)
    return f"3.{lo}" if lo == hi else f"3.{lo}-3.{hi}"


def upper_bound(spec: str | None) -> bool:
    return any(s.operator in UPPER for s in _specifiers(spec))
