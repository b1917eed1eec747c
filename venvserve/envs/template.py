"""An env template (``envs/NAME/``) and its identity: the hash of its files."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

IGNORED = {"__pycache__", ".venv", ".git"}
_FINGERPRINTS: dict[str, tuple[tuple, str]] = {}  # template path -> (file stats, hash)


@dataclass(frozen=True)
class Template:
    name: str
    path: Path

    @property
    def files(self) -> list[Path]:
        return sorted(
            p for p in self.path.rglob("*")
            if p.is_file() and not IGNORED.intersection(p.relative_to(self.path).parts)
        )

    def fingerprint(self) -> str:
        """Changes whenever any template file changes (content or name).

        The hash is remembered by the files' (name, mtime_ns, size), so asking
        again (every status call) costs a stat per file, not a read.
        """
        stats = []
        for file in self.files:
            try:
                st = file.stat()
            except OSError:
                continue
            stats.append((str(file.relative_to(self.path)), st.st_mtime_ns, st.st_size))
        key = (str(self.path), tuple(stats))
        cached = _FINGERPRINTS.get(str(self.path))
        if cached and cached[0] == key:
            return cached[1]
        digest = hashlib.sha256()
        for name, _mtime, _size in stats:
            digest.update(name.encode() + b"\0")
            digest.update((self.path / name).read_bytes() + b"\0")
        value = digest.hexdigest()[:16]
        _FINGERPRINTS[str(self.path)] = (key, value)
        return value

    @property
    def has_lock(self) -> bool:
        return (self.path / "uv.lock").is_file()

    @property
    def post_install(self) -> Path | None:
        script = self.path / "post_install.sh"
        return script if script.is_file() else None

    def requires_python(self) -> str | None:
        import tomllib

        try:
            data = tomllib.loads((self.path / "pyproject.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError):
            return None
        return data.get("project", {}).get("requires-python")

    def pinned_python(self) -> str | None:
        pin = self.path / ".python-version"
        if not pin.is_file():
            return None
        return pin.read_text().strip() or None
