"""Facts about a built venv, read from its files (no subprocess, no import)."""

import os
from pathlib import Path


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def python_version(venv: Path) -> str | None:
    try:
        for line in (venv / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version_info", "version"):
                return value.strip()
    except OSError:
        pass
    return None


def packages(venv: Path) -> dict[str, str]:
    """Installed distributions {name: version}, from their dist-info metadata."""
    found = {}
    for site in venv.glob("lib/python*/site-packages"):
        for meta in site.glob("*.dist-info/METADATA"):
            name = version = None
            with open(meta, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("Name:"):
                        name = line[5:].strip()
                    elif line.startswith("Version:"):
                        version = line[8:].strip()
                    if (name and version) or line == "\n":
                        break
            if name:
                found[name.lower().replace("_", "-")] = version
    return dict(sorted(found.items()))


def size_bytes(path: Path) -> int:
    """Disk used, counting a hard-linked file once (uv links from its cache)."""
    seen, total = set(), 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def tail(path: Path, lines: int = 40) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            return f.read().decode("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return []
