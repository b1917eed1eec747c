"""Env integrity and identity: RECORD checks of a venv, the template
fingerprint cached by file stats."""

import base64
import hashlib
import os

from venvserve.envs import integrity
from venvserve.envs.template import Template


def venv_with(tmp_path, files: dict[str, bytes]):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    info = site / "pkg-1.0.dist-info"
    info.mkdir(parents=True)
    rows = []
    for name, data in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(data)}")
    rows.append("pkg-1.0.dist-info/RECORD,,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return tmp_path / "venv", site


def test_a_venv_as_installed_passes_both_checks(tmp_path):
    venv, _ = venv_with(tmp_path, {"pkg/__init__.py": b"x = 1\n", "pkg/data.bin": b"\0" * 100})
    assert integrity.check(venv).ok and integrity.check(venv, full=True).ok
    assert integrity.check(venv).checked == 3  # the two files and the RECORD itself


def test_a_missing_or_resized_file_is_found_by_the_quick_check(tmp_path):
    venv, site = venv_with(tmp_path, {"pkg/__init__.py": b"x = 1\n", "pkg/data.bin": b"\0" * 100})
    (site / "pkg" / "__init__.py").unlink()
    (site / "pkg" / "data.bin").write_bytes(b"\0" * 5)
    report = integrity.check(venv)
    assert not report.ok and len(report.problems) == 2
    assert "pkg/__init__.py is missing" in report.reason() and "has 5 bytes, not 100" in report.reason()


def test_a_changed_file_of_the_same_size_needs_the_full_check(tmp_path):
    venv, site = venv_with(tmp_path, {"pkg/__init__.py": b"x = 1\n"})
    (site / "pkg" / "__init__.py").write_bytes(b"x = 2\n")
    assert integrity.check(venv).ok
    report = integrity.check(venv, full=True)
    assert not report.ok and "changed (hash)" in report.reason()
    assert integrity.check(venv, full=True, ignore=frozenset(report_paths(report))).ok


def report_paths(report):
    return [p.split(" ", 1)[0] for p in report.problems]


def test_the_fingerprint_follows_content_and_is_cached_by_stats(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    template = Template("x", tmp_path)
    first = template.fingerprint()
    reads = []
    original = type(tmp_path).read_bytes
    monkeypatch.setattr(type(tmp_path), "read_bytes", lambda self: reads.append(self) or original(self))
    assert template.fingerprint() == first and reads == []  # unchanged files: no read
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    os.utime(tmp_path / "pyproject.toml", ns=(1, 1))
    assert template.fingerprint() != first and reads
