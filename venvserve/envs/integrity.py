"""Does a built venv still hold what uv installed?

Every installed distribution lists its files in ``*.dist-info/RECORD`` with
a size and a hash. The quick check (run when a worker fails to boot) looks
at existence and sizes; the full check (`venvserve envs verify`) also hashes
each file. Files that already differed when the build finished (a
``post_install.sh`` may patch a package) are recorded then and not blamed
later.
"""

import base64
import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_LISTED = 5


@dataclass
class Report:
    checked: int = 0
    problems: list[str] = field(default_factory=list)  # "missing lib/.../x.py", "size of ... changed"

    @property
    def ok(self) -> bool:
        return not self.problems

    def reason(self) -> str:
        shown = "; ".join(self.problems[:MAX_LISTED])
        more = f" (and {len(self.problems) - MAX_LISTED} more)" if len(self.problems) > MAX_LISTED else ""
        return f"the env's files differ from what uv installed: {shown}{more}"


def records(venv: Path):
    """(file, expected size or None, "algo=digest" or "") for every RECORD row of the venv."""
    for site in sorted(Path(venv).glob("lib/python*/site-packages")):
        for record in sorted(site.glob("*.dist-info/RECORD")):
            try:
                rows = list(csv.reader(record.read_text(encoding="utf-8", errors="replace").splitlines()))
            except (OSError, csv.Error):
                continue
            for row in rows:
                path, digest, size = (row + ["", ""])[:3]
                if not path or path.endswith(".pyc") or "__pycache__" in path:
                    continue
                yield site / path, (int(size) if size.isdigit() else None), digest


def check(venv: Path, full: bool = False, ignore: frozenset = frozenset()) -> Report:
    report = Report()
    for path, size, digest in records(venv):
        shown = os.path.relpath(path, venv)
        if shown in ignore:
            continue
        report.checked += 1
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            report.problems.append(f"{shown} is missing")
            continue
        except OSError as exc:
            report.problems.append(f"{shown}: {exc.strerror}")
            continue
        if size is not None and actual != size:
            report.problems.append(f"{shown} has {actual} bytes, not {size}")
        elif full and digest and not _same_digest(path, digest):
            report.problems.append(f"{shown} has changed (hash)")
    return report


def _same_digest(path: Path, recorded: str) -> bool:
    algo, _, expected = recorded.partition("=")
    try:
        h = hashlib.new(algo)
    except ValueError:
        return True  # an algorithm this Python lacks: nothing to compare
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return False
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode() == expected


def drift(venv: Path) -> list[str]:
    """Files that already differ right after a build (patched by post_install.sh)."""
    return [os.path.relpath(p, venv) for p, size, _ in records(venv)
            if size is not None and (not p.exists() or p.stat().st_size != size)]
