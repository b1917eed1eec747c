"""How big an env would be, in the units `venvserve envs list` shows.

A built env is measured on disk with the one size function of the envs
(venvinfo.size_bytes). An env not built yet is estimated from its lock: per
distribution, the installed size of the same release where a built env of
the data dir has it (from its RECORD), else the wheel's download size times
the ratio of installed to download size seen in those built envs (or
WHEEL_TO_DISK when there are none).
"""

from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .templates import canonical, read_lock

WHEEL_TO_DISK = 2.3  # installed bytes per wheel byte, typical of compiled packages
_PLATFORMS = (["linux_x86_64", "manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
              + [f"manylinux_2_{n}_x86_64" for n in range(5, 40)])
# The wheels an env for CPython 3.11 or 3.12 on Linux x86_64 would install.
TARGET_TAGS: frozenset[Tag] = frozenset(
    tag for minor in (11, 12)
    for tag in [*cpython_tags((3, minor), platforms=_PLATFORMS),
                *compatible_tags((3, minor), interpreter=f"cp3{minor}", platforms=_PLATFORMS)])


def wheel_sizes(lockfile: Path) -> dict[str, tuple[str, int]]:
    """name → (version, download size) of what the lock installs on the target platform."""
    sizes: dict[str, tuple[str, int]] = {}
    for pkg in read_lock(lockfile).get("package", []):
        best = None
        for wheel in pkg.get("wheels", []):
            filename = wheel.get("url", wheel.get("path", "")).rsplit("/", 1)[-1]
            try:
                tags = parse_wheel_filename(filename)[3]
            except InvalidWheelFilename:
                continue
            if tags & TARGET_TAGS:
                best = max(best or 0, int(wheel.get("size", 0)))
        if best is None and pkg.get("sdist"):
            best = int(pkg["sdist"].get("size", 0))
        name = canonical(pkg["name"])
        previous = sizes.get(name, ("", 0))[1]
        sizes[name] = (str(pkg.get("version", "")), max(previous, best or 0))
    return sizes


def estimate_size(lockfile: Path) -> int:
    """Download size of a lock for CPython 3.11-3.12 on Linux x86_64 (≈, from the wheel sizes uv records)."""
    return sum(size for _version, size in wheel_sizes(lockfile).values())


def installed_estimate(lockfile: Path, known: dict[tuple[str, str], int], ratio: float | None = None) -> int:
    """Bytes on disk the lock's env would take, from ``known`` installed sizes ((name, version) → bytes)."""
    ratio = ratio or WHEEL_TO_DISK
    return int(sum(known.get((name, version)) or size * ratio
                   for name, (version, size) in wheel_sizes(lockfile).items()))


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover
