"""The GPU models' backends (deepseek, mineru, hunyuan-ocr) on their real code paths, and paddle.

The heavy tests (``-m heavy_envs``) build the envs ``deepseek-ocr``
(torch 2.6.0, transformers 4.47.1), ``mineru`` and ``hunyuan`` (torch 2.9,
transformers 5) from their locks through a server's env manager, build tiny
random-weight checkpoints of MinerU2.5's and HunyuanOCR's architectures inside
those envs with the real libraries (tiny_models.py), and send pages through
``/v1/ocr`` on the CPU in float32. DeepSeek-OCR's model is its hub repo's own
code, which cannot be built here: its load must fail with what to do.

What still runs against stand-ins is what cannot run here: PaddleX without its
models, and the hub's side of ``venvserve models pull`` (no hub is reachable).
docs/gpu-models.md lists which paths ran where.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from support import ROOT, image_bytes, render_lines, start_server

sys.path.insert(0, str(ROOT / "worker_runtime"))

from venvserve_worker.backends import _hub, deepseek, mineru  # noqa: E402


def cli(*args, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("VENVSERVE_") and k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "venvserve.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**base, **(env or {})})


# -- the stand-ins ---------------------------------------------------------------

FAKES = {
    "fakelog.py": '''
        import json, os

        def log(event, **data):
            with open(os.environ["FAKE_LOG"], "a") as f:
                f.write(json.dumps(dict(data, event=event), default=repr) + "\\n")
    ''',
    "huggingface_hub/__init__.py": '''
        import os, shutil
        from fakelog import log

        class LocalEntryNotFoundError(Exception):
            pass

        def snapshot_download(repo_id, revision=None, allow_patterns=None, local_files_only=False, **kwargs):
            log("snapshot_download", repo_id=repo_id, revision=revision, local_files_only=local_files_only,
                allow_patterns=allow_patterns)
            root = os.path.join(os.environ["HF_HOME"], "hub", "models--" + repo_id.replace("/", "--"))
            ref = os.path.join(root, "refs", revision or "main")
            if os.path.isfile(ref):
                return os.path.join(root, "snapshots", open(ref).read().strip())
            if local_files_only:
                raise LocalEntryNotFoundError("%s is not in the cache" % repo_id)
            source = os.path.join(os.environ.get("FAKE_HUB", "/nonexistent"), repo_id)
            if not os.path.isdir(source):
                raise OSError("We couldn't connect to 'https://huggingface.co' to load the files of %s" % repo_id)
            snapshot = os.path.join(root, "snapshots", "c0ffee")
            shutil.copytree(source, snapshot)
            os.makedirs(os.path.dirname(ref), exist_ok=True)
            open(ref, "w").write("c0ffee")
            return snapshot
    ''',
    "paddleocr/__init__.py": '''
        import os
        from fakelog import log
        __version__ = "3.7.0+stand-in"

        class PaddleOCR:
            def __init__(self, **kwargs):
                log("paddle.init", source_check=os.environ.get("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK"), **kwargs)
                home = os.path.join(os.environ["PADDLE_PDX_CACHE_HOME"], "official_models")
                for key in ("text_detection_model_name", "text_recognition_model_name"):
                    if not os.path.isdir(os.path.join(home, kwargs.get(key, "?"))):
                        # what paddlex 3.7 raises when no hoster answers
                        raise Exception("Encounter exception when download model from bos. No model source is "
                                        "available! Please check network or use local model files!")
            def predict(self, array):
                log("paddle.predict", shape=list(array.shape), first_pixel=array[0, 0].tolist())
                return [{"rec_texts": ["world", "Hello", "noise"],
                         "rec_polys": [[[130, 10], [220, 10], [220, 40], [130, 40]],
                                       [[10, 12], [110, 12], [110, 40], [10, 40]],
                                       [[10, 60], [40, 60], [40, 70], [10, 70]]],
                         "rec_scores": [0.98, 0.97, 0.2]}]
    ''',
}


DEEPSEEK_REMOTE_CODE = '''\
import math
from transformers.models.llama.modeling_llama import (
    LlamaAttention,
    LlamaFlashAttention2
)
from transformers.utils.import_utils import is_torch_fx_available

ATTENTION_CLASSES = {"mha_eager": LlamaAttention, "mha_flash_attention_2": LlamaFlashAttention2}
'''


def make_fake_python(root: Path) -> Path:
    """A venv over this interpreter (Pillow, numpy) with the stand-ins in its site-packages."""
    venv = root / "fake-env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    for rel, source in FAKES.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return venv / "bin" / "python"


def hf_cache_repo(data_dir: Path, repo: str, files: dict[str, str]) -> Path:
    """A repo in the hub cache's layout: blobs, a snapshot of symlinks, refs/main."""
    root = data_dir / "cache" / "huggingface" / "hub" / ("models--" + repo.replace("/", "--"))
    snapshot = root / "snapshots" / "c0ffee"
    snapshot.mkdir(parents=True)
    (root / "blobs").mkdir()
    for i, (name, text) in enumerate(files.items()):
        blob = root / "blobs" / f"blob{i}"
        blob.write_text(text)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name))
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("c0ffee")
    return snapshot


def paddle_models(data_dir: Path, *names: str) -> None:
    for name in names:
        folder = data_dir / "cache" / "paddlex" / "official_models" / name
        folder.mkdir(parents=True)
        (folder / "inference.json").write_text("{}")


def events(log: Path, name: str) -> list[dict]:
    if not log.exists():
        return []
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == name]


# -- through the gateway ---------------------------------------------------------

@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu-backends")
    python = str(make_fake_python(tmp))
    data = tmp / "data"
    for repo in ("deepseek-ai/DeepSeek-OCR", "opendatalab/MinerU2.5-2509-1.2B", "tencent/HunyuanOCR"):
        hf_cache_repo(data, repo, {"config.json": "{}"})
    paddle_models(data, "PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec")
    cpu = {"python": python, "device": "cpu"}
    catalog = [  # the hub models are only asked about here (availability), never loaded
        {"id": "deepseek-ai/DeepSeek-OCR", "architecture": "deepseek", **cpu},
        {"id": "opendatalab/MinerU2.5-2509-1.2B", "architecture": "mineru", **cpu},
        {"id": "tencent/HunyuanOCR", "architecture": "hunyuan-ocr", **cpu},
        {"id": "pp-ocrv5", "architecture": "paddle", **cpu,
         "options": {"text_detection_model_name": "PP-OCRv5_mobile_det",
                     "text_recognition_model_name": "PP-OCRv5_mobile_rec", "cpu_threads": 2}},
        {"id": "paddle-missing", "architecture": "paddle", **cpu,
         "options": {"text_detection_model_name": "PP-OCRv5_server_det",
                     "text_recognition_model_name": "PP-OCRv5_server_rec"}},
        {"id": "hunyuan-missing", "architecture": "hunyuan-ocr", **cpu, "options": {"weights": "tencent/Absent"}},
    ]
    log = tmp / "fake.log"
    server = start_server(tmp / "server", catalog, data_dir=data,
                          env={"FAKE_LOG": str(log), "HF_HUB_OFFLINE": "1"})
    server.fake_log = log
    yield server
    server.stop()


PAGE = render_lines(["Hello world"], width=320)


def ocr(server, model: str, fmt: str = "text", content: bytes | None = None, name: str = "page.png"):
    content = content or image_bytes(PAGE)
    return server.client.post("/v1/ocr", files={"file": (name, content)}, data={"model": model, "format": fmt})


def test_paddle_lays_out_lines_in_reading_order(gpu_server):
    image = PAGE.copy()
    image.putpixel((0, 0), (255, 0, 0))  # a red corner: PaddleX must receive it as BGR
    r = ocr(gpu_server, "pp-ocrv5", "text", image_bytes(image))
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "Hello world"  # left to right; the low-score fragment dropped
    init = events(gpu_server.fake_log, "paddle.init")[-1]
    assert init["text_detection_model_name"] == "PP-OCRv5_mobile_det" and init["device"] == "cpu"
    assert init["use_doc_unwarping"] is False and init["cpu_threads"] == 2
    assert init["source_check"] == "True"
    assert events(gpu_server.fake_log, "paddle.predict")[-1]["first_pixel"] == [0, 0, 255]


def test_models_without_weights_are_unavailable_offline_with_the_command_to_fix_it(gpu_server):
    models = {m["id"]: m for m in gpu_server.client.get("/v1/models").json()["data"]}
    for ok in ("deepseek-ai/DeepSeek-OCR", "opendatalab/MinerU2.5-2509-1.2B", "tencent/HunyuanOCR", "pp-ocrv5"):
        assert models[ok]["available"] is True, models[ok]
    # The GPU models run on the CPU when the catalog says so, and say it is slow; paddle is a CPU model.
    assert models["tencent/HunyuanOCR"]["reason"].startswith("runs on the CPU (slow)")
    assert models["deepseek-ai/DeepSeek-OCR"]["reason"].startswith("cannot read pages on the CPU")
    assert models["pp-ocrv5"]["reason"] is None
    missing = models["hunyuan-missing"]
    assert missing["available"] is False
    assert "HF_HUB_OFFLINE" in missing["reason"] and "venvserve models pull hunyuan-missing" in missing["reason"]
    r = ocr(gpu_server, "hunyuan-missing")
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"


def test_paddle_without_its_models_says_what_to_do(gpu_server, tmp_path):
    # Through the gateway: refused up front once the hub probe found huggingface.co (PaddleX's
    # default hoster) unreachable, else the worker's boot fails with PaddleX's own error.
    r = ocr(gpu_server, "paddle-missing")
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] in ("model_unavailable", "model_failed") and "venvserve models pull" in error["message"]
    # The backend's own error, whatever the probe says.
    python = make_fake_python(tmp_path)
    code = ("from venvserve_worker.backends.paddle import PaddleOCRBackend\n"
            "PaddleOCRBackend().load({'text_detection_model_name': 'PP-OCRv5_server_det'})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "worker_runtime"), "FAKE_LOG": str(tmp_path / "log"),
           "PADDLE_PDX_CACHE_HOME": str(tmp_path / "pdx")}
    run = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "No model source is available" in run.stderr and "venvserve models pull" in run.stderr
    assert "PP-OCRv5_server_det" in run.stderr and str(tmp_path / "pdx") in run.stderr


# -- the pieces, in process ------------------------------------------------------

def test_backend_weights_missing_error_names_the_fix(tmp_path):
    python = make_fake_python(tmp_path)
    code = ("from venvserve_worker.backends import _hub\n"
            "try:\n    _hub.resolve_weights({}, 'deepseek-ai/DeepSeek-OCR')\n"
            "except _hub.WeightsMissing as exc:\n    print(exc)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "worker_runtime"), "FAKE_LOG": str(tmp_path / "log"),
           "HF_HOME": str(tmp_path / "hf")}
    for offline, expected in (("1", "the hub is offline (HF_HUB_OFFLINE)"), ("", "downloading them failed (OSError")):
        out = subprocess.run([str(python), "-c", code], env={**env, "HF_HUB_OFFLINE": offline},
                             capture_output=True, text=True, timeout=60).stdout
        assert expected in out and "venvserve models pull deepseek-ai/DeepSeek-OCR" in out, out


def test_models_pull_downloads_into_the_data_dir(tmp_path):
    python = make_fake_python(tmp_path)
    hub = tmp_path / "hub" / "tencent" / "HunyuanOCR"
    hub.mkdir(parents=True)
    (hub / "config.json").write_text("{}")
    catalog = tmp_path / "models.json"
    catalog.write_text(json.dumps([{"id": "tencent/HunyuanOCR", "architecture": "hunyuan-ocr",
                                    "python": str(python), "options": {"weights": "tencent/HunyuanOCR"}}]))
    data = tmp_path / "data"
    args = ("models", "pull", "tencent/HunyuanOCR", "--catalog", catalog, "--data-dir", data)
    env = {"FAKE_LOG": str(tmp_path / "log"), "FAKE_HUB": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    run = cli(*args, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "Pulled tencent/HunyuanOCR" in run.stderr
    assert (data / "cache/huggingface/hub/models--tencent--HunyuanOCR/snapshots/c0ffee/config.json").exists()
    again = cli(*args, cwd=tmp_path, env=env)
    assert again.returncode == 0 and "already in" in again.stderr
    failed = cli("models", "pull", "tencent/HunyuanOCR", "--catalog", catalog, "--data-dir", tmp_path / "d2",
                 cwd=tmp_path, env={**env, "FAKE_HUB": str(tmp_path / "nowhere")})
    assert failed.returncode == 1 and "error: downloading the weights of tencent/HunyuanOCR failed" in failed.stderr
    assert "couldn't connect" in failed.stderr  # the library's own message, passed through
    nothing = cli("models", "pull", "rapidocr", "--data-dir", data, cwd=tmp_path)
    assert nothing.returncode == 0 and "no weights to download" in nothing.stderr


def test_deepseek_patch_source_is_idempotent_and_leaves_other_code_alone():
    patched, changed = deepseek.patch_source(DEEPSEEK_REMOTE_CODE)
    assert changed == ["LlamaFlashAttention2", "is_torch_fx_available"]
    assert deepseek.patch_source(patched) == (patched, [])
    assert patched.endswith(DEEPSEEK_REMOTE_CODE.splitlines(True)[-1])
    compile(patched, "modeling_deepseekv2.py", "exec")
    block = ("from transformers.pytorch_utils import (\n    ALL_LAYERNORM_LAYERS,\n"
             "    is_torch_greater_or_equal_than_1_13,\n)\nx = 1\n")
    patched, changed = deepseek.patch_source(block)
    assert changed == ["is_torch_greater_or_equal_than_1_13"] and patched.endswith("x = 1\n")
    assert "from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS\n" in patched


def test_deepseek_patches_a_hub_snapshot_without_touching_its_blobs(tmp_path):
    snapshot = hf_cache_repo(tmp_path, "deepseek-ai/DeepSeek-OCR",
                             {"config.json": "{}", "modeling_deepseekv2.py": DEEPSEEK_REMOTE_CODE})
    assert deepseek.patch_remote_code(str(snapshot)) == {
        "modeling_deepseekv2.py": ["LlamaFlashAttention2", "is_torch_fx_available"]}
    patched = snapshot / "modeling_deepseekv2.py"
    assert not patched.is_symlink()  # a patched copy replaced the link...
    blobs = {p.read_text() for p in (snapshot.parent.parent / "blobs").iterdir()}
    assert DEEPSEEK_REMOTE_CODE in blobs  # ...the shared blob is untouched
    assert "LlamaFlashAttention2 = LlamaAttention" in patched.read_text()
    assert deepseek.patch_remote_code(str(snapshot)) == {}  # idempotent


def test_output_cleaners():
    assert deepseek.clean_output("<|ref|>image<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\n\n\n\nText") == "Text"
    assert mineru.table_text("<table><tr><th>x</th><td> y  z </td></tr></table>") == "x\ty z"
    tail = "ab" * 10
    assert _hub.clean_repeats("x" * 8000 + tail * 50) == "x" * 8000 + "ab"
    assert _hub.clean_repeats("short ab ab ab") == "short ab ab ab"


def test_cuda_models_without_a_gpu_say_so(monkeypatch, tmp_path):
    from venvserve import availability
    from venvserve.catalog import ModelSpec
    from venvserve.envs import EnvManager

    monkeypatch.setattr(availability.gpu, "available", lambda: False)
    envs = EnvManager(ROOT / "envs", tmp_path)
    spec = ModelSpec(id="deepseek-ai/DeepSeek-OCR", architecture="deepseek", python_env="deepseek-ocr", device="cuda")
    ok, reason = availability.check(spec, envs)
    assert not ok and reason.startswith("needs a CUDA GPU") and "; " in reason
    # With a GPU, the weights decide: cached → available; absent with the hub unreachable → not.
    monkeypatch.setattr(availability.gpu, "available", lambda: True)
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert availability.check(spec, envs) == (True, None)  # the first load would download them
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ok, reason = availability.check(spec, envs)
    assert not ok and "HF_HUB_OFFLINE" in reason and "models pull deepseek-ai/DeepSeek-OCR" in reason
    hf_cache_repo(tmp_path, "deepseek-ai/DeepSeek-OCR", {"config.json": "{}"})
    assert availability.check(spec, envs) == (True, None)


def test_a_catalog_device_cpu_reaches_the_backend_as_its_device_option():
    from venvserve.catalog import ModelSpec

    # A GPU backend picks CUDA whenever torch sees a GPU: the catalog's cpu must reach it.
    spec = ModelSpec(id="m", architecture="mineru", device="cpu", options={"weights": "/w"})
    assert spec.options == {"weights": "/w", "device": "cpu"}
    assert ModelSpec(id="m", architecture="mineru", device="cpu").options == {"device": "cpu"}
    assert ModelSpec(id="m", architecture="paddle", device="cpu", options={"device": "cpu:0"}).options == {
        "device": "cpu:0"}  # an explicit option wins
    for device in ("cuda", "auto"):
        assert ModelSpec(id="m", architecture="mineru", device=device).options == {}
    assert ModelSpec(id="m", architecture="mineru").options == {}  # no device given: the backend decides
