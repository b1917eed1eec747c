"""An invalid catalog stops `venvserve serve` with one message naming the file, the model and the field."""

import json
import subprocess
import sys

import pytest

from support import ROOT, free_port

from venvserve.catalog import CatalogError, load_catalog

GOOD = {"id": "fine", "architecture": "echo"}

# (case id, file content, what the message must name besides the file)
BAD = [
    ("unknown_field", [GOOD, {"id": "m1", "architecture": "echo", "colour": "red"}], ["'m1'", "colour"]),
    ("bad_id_dotdot", [{"id": "../x", "architecture": "echo"}], ["'../x'", "'id'"]),
    ("bad_id_absolute", [{"id": "/etc/passwd", "architecture": "echo"}], ["'/etc/passwd'", "'id'"]),
    ("duplicate_id", [GOOD, {"id": "dup", "architecture": "echo"}, {"id": "dup", "architecture": "tesseract"}],
     ["'dup'", "'id'", "duplicate"]),
    ("bad_env_name", [{"id": "m2", "architecture": "echo", "python_env": "../../etc"}], ["'m2'", "python_env"]),
    ("missing_architecture", [{"id": "m3"}], ["'m3'", "architecture"]),
    ("wrong_type", [{"id": "m4", "architecture": "echo", "replicas": "two"}], ["'m4'", "replicas"]),
    ("pdf_dpi_too_high", [GOOD, {"id": "m7", "architecture": "echo", "pdf_dpi": 601}], ["'m7'", "pdf_dpi", "600"]),
    ("not_json", "[{\"id\": \"m5\", ", ["JSON"]),
    ("not_an_array", {"id": "m6", "architecture": "echo"}, ["array"]),
]


def write(tmp_path, content) -> str:
    path = tmp_path / "bad catalog.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.mark.parametrize("content, names", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_serve_refuses_an_invalid_catalog(tmp_path, content, names):
    path = write(tmp_path, content)
    proc = subprocess.run(
        [sys.executable, "-m", "venvserve.cli", "serve", "--catalog", path, "--port", str(free_port()),
         "--data-dir", str(tmp_path / "data"), "--envs-dir", str(ROOT / "envs")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert path in out, out
    for name in names:
        assert name in out, f"{name!r} missing from: {out}"
    assert "Traceback" not in out, out  # one message, not a stack trace


@pytest.mark.parametrize("content, names", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_load_catalog_raises_catalog_error(tmp_path, content, names):
    path = write(tmp_path, content)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert path in message
    for name in names:
        assert name in message


def test_missing_catalog_file(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.json")


def test_the_default_catalog_is_valid():
    catalog = load_catalog(ROOT / "models.json")
    ids = [m.id for m in catalog]
    assert {"rapidocr", "rapidocr-v4", "tesseract", "echo"} <= set(ids)
    assert catalog.default == "rapidocr"
    by_id = {m.id: m for m in catalog}
    assert by_id["rapidocr"].python_env == "rapidocr" and by_id["rapidocr"].architecture == "rapidocr"
    assert by_id["rapidocr-v4"].architecture == "rapidocr-onnxruntime"
    assert by_id["tesseract"].python_env == "tesseract"
    assert by_id["echo"].python_env is None and by_id["echo"].python is None
    for env in {m.python_env for m in catalog if m.python_env}:
        assert (ROOT / "envs" / env / "pyproject.toml").is_file()
        assert (ROOT / "envs" / env / "uv.lock").is_file()


def test_ids_with_a_slash_and_every_documented_field(tmp_path):
    entry = {"id": "deepseek-ai/DeepSeek-OCR", "task": "ocr", "architecture": "mypkg.mod:MyBackend",
             "python_env": "deepseek", "python": None, "options": {"a": 1}, "device": "cuda",
             "memory_mb": 100, "gpu_memory_mb": 2000, "replicas": 2, "max_concurrency": 4,
             "idle_timeout_s": 30, "pdf_dpi": 300}
    catalog = load_catalog(write(tmp_path, [entry]))
    spec = catalog.get("deepseek-ai/DeepSeek-OCR")
    assert spec.replicas == 2 and spec.device == "cuda" and spec.options == {"a": 1}
    assert spec.pdf_dpi == 300 and spec.render_dpi(200) == 300


def test_pdf_dpi_defaults_to_the_setting_and_is_bounded(tmp_path):
    catalog = load_catalog(write(tmp_path, [GOOD, {"id": "edge", "architecture": "echo", "pdf_dpi": 36}]))
    assert catalog.get("fine").pdf_dpi is None and catalog.get("fine").render_dpi(200) == 200
    assert catalog.get("edge").render_dpi(200) == 36
    for bad in (35, 0, -1, 601, 150.5, "high", True):
        with pytest.raises(CatalogError) as info:
            load_catalog(write(tmp_path, [{"id": "m8", "architecture": "echo", "pdf_dpi": bad}]))
        assert "'m8'" in str(info.value) and "'pdf_dpi'" in str(info.value), (bad, str(info.value))


def test_rapidocr_v4_renders_pdf_pages_at_300_dpi():
    # At 200 dpi it runs the words of small type together; at 300 it keeps the spaces (docs/ocr-quality.md).
    catalog = load_catalog(ROOT / "models.json")
    assert catalog.get("rapidocr-v4").pdf_dpi == 300
    assert catalog.get("rapidocr").pdf_dpi is None and catalog.get("tesseract").pdf_dpi is None


def test_an_unknown_model_is_a_404_that_suggests_the_nearest_id():
    import pytest

    from venvserve.catalog import Catalog, ModelSpec
    from venvserve.errors import NotFound

    catalog = Catalog([ModelSpec(id="rapidocr", architecture="echo"), ModelSpec(id="tesseract", architecture="echo")])
    with pytest.raises(NotFound) as near:
        catalog.require("rapidocr2")
    assert near.value.status == 404 and near.value.code == "model_not_found"
    assert near.value.hint.startswith("did you mean 'rapidocr'? ")
    with pytest.raises(NotFound) as far:
        catalog.require("x" * 10_000)
    assert "did you mean" not in far.value.hint and len(far.value.message) < 300
