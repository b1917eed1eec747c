"""The env planner's pieces, without a network: Python bounds (PEP 440), the
joint project (TOML), uv's explanations, the clique cover, file-level
clashes, lock sizes. uv against PyPI: tests/e2e/test_planner_resolve.py."""

import tomllib

from support import ROOT
from venvserve.envs import planner


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


def test_names_and_releases_follow_pep_503_and_the_wheel_spec():
    assert planner.canonical("Rapidocr_ONNXRuntime") == "rapidocr-onnxruntime"
    assert planner.requirement_name("opencv_python.headless[extra]>=4.5; python_version<'3.13'") == \
        "opencv-python-headless"
    assert planner.release_of("torch-2.6.0+cu124-cp312-cp312-manylinux_2_28_x86_64.whl") == ("torch", "2.6.0+cu124")
    assert planner.release_of("rapidocr_onnxruntime-1.4.4.tar.gz") == ("rapidocr-onnxruntime", "1.4.4")
    assert planner.release_of("not a file name") is None
    assert planner.upper_bound(">=3.9,<3.13") and planner.upper_bound("~=3.10")
    assert not planner.upper_bound(">=3.9") and not planner.upper_bound(None)
    assert planner.allowed_minors(">=3.9, nonsense") == set(range(9, 16))  # an unreadable clause constrains nothing


def test_sizes_of_a_lock_use_the_installed_sizes_of_built_envs(tmp_path):
    from venvserve.envs.planner import sizes

    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n[[package]]\nname = "big"\nversion = "1.0"\nwheels = [\n'
                    '  { url = "https://x/big-1.0-cp312-cp312-manylinux_2_28_x86_64.whl", size = 1000 },\n'
                    '  { url = "https://x/big-1.0-cp312-cp312-win_amd64.whl", size = 99999 },\n]\n'
                    '[[package]]\nname = "small"\nversion = "2.0"\n'
                    'wheels = [{ url = "https://x/small-2.0-py3-none-any.whl", size = 10 }]\n')
    assert sizes.estimate_size(lock) == 1010  # the Windows wheel is not what Linux installs
    assert sizes.installed_estimate(lock, {("big", "1.0"): 5000}, ratio=3) == 5030
