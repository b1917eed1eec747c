"""`venvserve envs plan`: which env templates could share an env, with evidence.

The resolution tests run the real uv against PyPI on the repository's own
templates (a few seconds; skipped when PyPI is unreachable); the rest test
the planner's pieces without a network.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT
from venvserve import planner
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
    assert "hint: the templates are:" in run.stderr
    run = cli("envs", "plan", "rapidocr", "--data-dir", tmp_path / "d", cwd=tmp_path)
    assert run.returncode == 1 and "two env templates or more" in run.stderr


# -- the pieces ----------------------------------------------------------------

def test_python_bounds():
    assert planner.allowed_minors(">=3.9,<3.13") == {9, 10, 11, 12}
    assert planner.allowed_minors("<3.13,>=3.6") == {8, 9, 10, 11, 12}
    assert planner.allowed_minors("==3.11.*") == {11}
    assert planner.allowed_minors(">3.12") >= {12, 13}  # 3.12.1 > 3.12
    assert planner.allowed_minors(">=3.13") & planner.allowed_minors("<3.13") == set()
    assert planner.describe_minors({10, 11, 12}) == "3.10-3.12"


def test_python_ranges_that_do_not_overlap_are_a_conflict_without_running_uv(tmp_path):
    a = planner.TemplateInfo("old", tmp_path, ["pillow"], "<3.10")
    b = planner.TemplateInfo("new", tmp_path, ["pillow"], ">=3.12")
    verdict = planner.Planner(tmp_path, tmp_path, "/nonexistent/uv").check([a, b])
    assert not verdict.ok and verdict.conflicts[0]["kind"] == "python"
    assert "old needs Python <3.10 (3.8-3.9)" in verdict.conflicts[0]["detail"]


def test_clashing_packages_are_read_from_uvs_explanation():
    message = ("error: No solution found when resolving dependencies for split (markers: ...)\n"
               "  cause: Because mineru-vl-utils[transformers]>=2.0.7 depends on transformers>=5.10.1 and your "
               "project depends on mineru-vl-utils[transformers]>=2.0.7, we can conclude that your project depends "
               "on transformers>=5.10.1.\n         And because your project depends on transformers==4.47.1, we "
               "can conclude that your project's requirements are unsatisfiable.")
    assert planner.clashing_packages(message) == {"transformers": [">=5.10.1", "==4.47.1"]}


def test_a_joint_project_unhides_what_another_template_needs(tmp_path):
    rapid = planner.load_template(ROOT / "envs" / "rapidocr")  # excludes opencv-python
    v4 = planner.load_template(ROOT / "envs" / "rapidocr-v4")  # excludes opencv-python-headless, needs opencv-python
    text = planner.joint_project([rapid, v4])
    import tomllib

    data = tomllib.loads(text)
    assert data["project"]["requires-python"] == ">=3.9,>=3.9,<3.13"
    assert "opencv-python>=4.5" in data["project"]["dependencies"]
    assert "opencv-python-headless>=4.5" in data["project"]["dependencies"]
    assert "exclude-dependencies" not in data["tool"]["uv"]  # both are direct: neither may be hidden
    assert data["tool"]["uv"]["environments"] == [planner.PLATFORM]
    deepseek = planner.load_template(ROOT / "envs" / "deepseek-ocr")
    data = tomllib.loads(planner.joint_project([deepseek, rapid]))
    assert data["tool"]["uv"]["dependency-metadata"][0]["name"] == "flash-attn"


def test_the_fewest_groups_of_compatible_templates():
    names = ["a", "b", "c", "d"]
    compatible = {("a", "c"), ("b", "d"), ("a", "d")}
    assert planner.clique_cover(names, compatible) == [["a", "c"], ["b", "d"]]
    assert planner.clique_cover(names, set()) == [["a"], ["b"], ["c"], ["d"]]
    everything = {(x, y) for x in names for y in names if x < y}
    assert planner.clique_cover(names, everything) == [names]
    # Pairwise fine, jointly not: the group is split.
    assert len(planner.clique_cover(names, everything, [frozenset(names)])) == 2


def test_file_level_clashes_from_the_records_of_built_envs(tmp_path):
    def built(env, dists):
        site = tmp_path / env / "lib" / "python3.11" / "site-packages"
        for dist, files in dists.items():
            info = site / f"{dist}-1.0.dist-info"
            info.mkdir(parents=True)
            (info / "RECORD").write_text("".join(f"{path},sha256={digest},10\n" for path, digest in files)
                                         + f"{dist}-1.0.dist-info/RECORD,,\n")
        return tmp_path / env

    ready = {
        "one": built("one", {"fancy_cv": [("cv3/__init__.py", "aaa"), ("nvidia/__init__.py", "empty")]}),
        "two": built("two", {"other_cv": [("cv3/__init__.py", "bbb"), ("nvidia/__init__.py", "empty")]}),
    }
    p = planner.Planner(tmp_path, tmp_path, "uv", ready_envs=ready)
    templates = [planner.TemplateInfo(n, tmp_path, [], None) for n in ready]
    clashes = p.module_clashes(templates, {"fancy-cv", "other-cv"})
    assert clashes == {"cv3": ("fancy-cv", "other-cv")}  # the identical namespace file is no clash
    assert p.module_clashes(templates, {"fancy-cv"}) == {}
    assert p.module_clashes(templates, {"opencv-python", "opencv-contrib-python"}) == {
        "cv2": ("opencv-python", "opencv-contrib-python")}


def test_lock_size_estimate_counts_linux_wheels_once_per_package():
    size = planner.estimate_size(ROOT / "envs" / "deepseek-ocr" / "uv.lock")
    assert 2 * 2**30 < size < 6 * 2**30  # torch 2.6.0 + its CUDA 12.4 wheels
    assert planner.estimate_size(ROOT / "envs" / "tesseract" / "uv.lock") < 30 * 2**20
