"""`venvserve envs plan` for real: uv resolves the repository's own templates
against PyPI (a few seconds; skipped when PyPI is unreachable)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT
from venvserve.envs import planner
from venvserve.envs.manager import uv_binary


def cli(*args, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENVSERVE_")}
    return subprocess.run([sys.executable, "-m", "venvserve.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


needs_pypi = pytest.mark.skipif(not pypi_reachable(), reason="PyPI is not reachable: uv cannot resolve")


@needs_pypi
def test_plan_of_the_cpu_templates_keeps_the_two_opencv_envs_apart(tmp_path):
    data = tmp_path / "data"
    run = cli("envs", "plan", "rapidocr", "rapidocr-v4", "tesseract", "--json", "--data-dir", data, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    groups = sorted(sorted(env["members"]) for env in plan["envs"])
    assert groups == [["rapidocr", "tesseract"], ["rapidocr-v4"]]
    [pair] = plan["conflicts"]
    assert pair["members"] == ["rapidocr", "rapidocr-v4"]
    [conflict] = pair["conflicts"]
    assert conflict["kind"] == "module" and "module cv2" in conflict["detail"]
    assert sorted(conflict["packages"]) == ["opencv-python", "opencv-python-headless"]
    assert "opencv-python (rapidocr-v4)" in conflict["detail"]
    # The Python bound, traced to the dependency that declares it (PyPI's simple index).
    assert any("rapidocr-onnxruntime 1.4.4 declares Requires-Python <3.13" in note for note in pair["notes"])
    assert plan["resolved"] == 3 and plan["cached"] == 0

    again = cli("envs", "plan", "rapidocr", "rapidocr-v4", "tesseract", "--data-dir", data, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(3 from cache)" in again.stderr  # no uv run the second time
    assert "Proposed: 2 envs for 3 templates" in again.stdout
    assert "rapidocr × rapidocr-v4" in again.stdout and "module cv2" in again.stdout


@needs_pypi
def test_transformers_pins_of_deepseek_and_mineru_do_not_resolve_together(tmp_path):
    p = planner.Planner(ROOT / "envs", tmp_path, uv_binary(), timeout_s=90)
    verdict = p.check([planner.load_template(ROOT / "envs" / n) for n in ("deepseek-ocr", "mineru")])
    assert not verdict.ok
    [conflict] = verdict.conflicts
    assert conflict["kind"] == "resolution" and conflict["packages"] == ["transformers"]
    assert "==4.47.1" in conflict["detail"] and ">=" in conflict["detail"]
    assert any("No solution found" in line for line in conflict["uv"])


def test_unknown_template_and_single_template_are_refused(tmp_path):
    run = cli("envs", "plan", "rapidocr", "nope", "--data-dir", tmp_path / "d", cwd=tmp_path)
    assert run.returncode == 1 and "error: no env template 'nope'" in run.stderr
    assert "hint: " in run.stderr and "venvserve envs list" in run.stderr
    run = cli("envs", "plan", "rapidocr", "tesseract4", "--data-dir", tmp_path / "d", cwd=tmp_path)
    assert run.returncode == 1 and "hint: did you mean 'tesseract'?" in run.stderr
    run = cli("envs", "plan", "rapidocr", "--data-dir", tmp_path / "d", cwd=tmp_path)
    assert run.returncode == 1 and "two env templates or more" in run.stderr


def test_plan_sizes_of_built_envs_agree_with_envs_list(tmp_path):
    """A template kept alone whose env is built is sized as `envs list` sizes it (on disk, measured)."""
    import shutil

    envs = tmp_path / "envs"
    shutil.copytree(ROOT / "envs" / "tesseract", envs / "tesseract")
    (envs / "old").mkdir()  # no Python in common with tesseract: a conflict found without uv
    (envs / "old" / "pyproject.toml").write_text('[project]\nname = "old"\nversion = "0"\n'
                                                 'requires-python = "<3.9"\ndependencies = []\n')
    data = tmp_path / "data"
    common = ("--envs-dir", envs, "--data-dir", data)
    assert cli("envs", "install", "tesseract", *common, cwd=tmp_path, timeout=300).returncode == 0
    listed = {e["name"]: e for e in json.loads(cli("envs", "list", "--json", *common, cwd=tmp_path).stdout)}

    run = cli("envs", "plan", "--json", *common, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    kept = {tuple(env["members"]): env for env in plan["envs"]}
    assert kept[("tesseract",)]["size_bytes"] == listed["tesseract"]["size_bytes"]
    assert kept[("tesseract",)]["measured"] is True and kept[("old",)]["measured"] is False
    [pair] = plan["conflicts"]
    assert pair["conflicts"][0]["kind"] == "python"
    text = cli("envs", "plan", *common, cwd=tmp_path).stdout
    line = next(line for line in text.splitlines() if "keep tesseract" in line)
    assert "≈" not in line and line.rstrip(")").endswith(listed_size(listed["tesseract"]["size_bytes"]))


def listed_size(n: int) -> str:
    from venvserve import console

    return console.size(n)
