"""The seed's GPU models on their real envs and code paths, on the CPU.

One gateway serves the envs ``deepseek-ocr`` (torch 2.6.0, transformers
4.47.1) and ``mineru`` / ``hunyuan`` (torch 2.9, transformers 5), built from
their locks by the server's env manager (``POST /v1/envs/{name}/install``)
into the session's shared data dir. Tiny random-weight checkpoints of
MinerU2.5's (Qwen2-VL) and HunyuanOCR's (hunyuan_vl) architectures are made
inside those envs by tiny_models.py; pages go through ``/v1/ocr`` in float32
on the CPU. The answers' text is noise by construction; what is asserted is
that every call ran (200, the answer's shape, the libraries' versions).

DeepSeek-OCR's model is code from its hub repo and cannot be built here: its
load must fail at once with what to do.
"""

import json
import os
import re
import subprocess

import httpx
import pytest

from support import ROOT, free_port, image_bytes, render_lines, start_server

ENVS = ("deepseek-ocr", "mineru", "hunyuan")
# A cold uv cache downloads ~3 GB per torch version (measured: 143 s for deepseek-ocr, 171 s
# for mineru); a warm one hard-links (under 10 s each). The first test also pays for the tiny models.
BUILD_TIMEOUT_S = 1800
pytestmark = [pytest.mark.heavy_envs, pytest.mark.timeout(3 * BUILD_TIMEOUT_S)]
CPU = {"device": "cpu"}
THREADS = 1  # torch's default (a thread per core) oversubscribes a shared CI machine


def locked_versions(env: str, package: str) -> set[str]:
    lock = (ROOT / "envs" / env / "uv.lock").read_text()
    return set(re.findall(r'\nname = "%s"\nversion = "([^"]+)"' % re.escape(package), lock))


def catalog(tiny: dict) -> list[dict]:
    return [
        {"id": "tiny-mineru", "architecture": "mineru", "python_env": "mineru", **CPU,
         "options": {"weights": str(tiny["mineru"]), "threads": THREADS}},
        {"id": "tiny-hunyuan", "architecture": "hunyuan-ocr", "python_env": "hunyuan", **CPU,
         "options": {"weights": str(tiny["hunyuan"]), "threads": THREADS, "max_new_tokens": 24}},
        # The real catalog entry, on the CPU: the weights are the hub's, and the hub is a closed port.
        {"id": "deepseek-ai/DeepSeek-OCR", "architecture": "deepseek", "python_env": "deepseek-ocr", **CPU,
         "options": {"weights": "deepseek-ai/DeepSeek-OCR", "threads": THREADS}},
        # DeepSeek's backend in a transformers-5 env: its remote code's imports are missing there.
        {"id": "deepseek-in-mineru-env", "architecture": "deepseek", "python_env": "mineru", **CPU,
         "options": {"weights": str(tiny["mineru"]), "threads": THREADS}},
        # ...and in its own env, with a weights folder: past the imports, it stops at the device.
        {"id": "deepseek-local-on-cpu", "architecture": "deepseek", "python_env": "deepseek-ocr", **CPU,
         "options": {"weights": str(tiny["mineru"]), "threads": THREADS}},
        # A probe of the DeepSeek env that loads: the echo backend reports that env's packages.
        {"id": "deepseek-env-probe", "architecture": "echo", "python_env": "deepseek-ocr"},
    ]


@pytest.fixture(scope="module")
def gpu_envs(tmp_path_factory, shared_data_dir):
    tmp = tmp_path_factory.mktemp("gpu-models")
    tiny = {"mineru": tmp / "tiny-mineru", "hunyuan": tmp / "tiny-hunyuan"}
    # The hub is a closed loopback port, and not switched off: the DeepSeek load must try it, and fail.
    hub = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "",
           "VENVSERVE_OFFLINE": ""}
    server = start_server(tmp / "server", catalog(tiny), data_dir=shared_data_dir, env=hub)
    try:
        server.builds = {}
        for env in ENVS:
            r = server.client.post(f"/v1/envs/{env}/install", timeout=BUILD_TIMEOUT_S)
            assert r.status_code == 200, r.text
            server.builds[env] = r.json()
        server.tiny = {}
        for env, folder in tiny.items():
            python = server.builds[env]["path"] + "/bin/python"
            run = subprocess.run([python, str(ROOT / "tests" / "e2e" / "tiny_models.py"), env, str(folder)],
                                 capture_output=True, text=True, timeout=600,
                                 env={**os.environ, "OMP_NUM_THREADS": str(THREADS)})
            assert run.returncode == 0, run.stderr[-3000:]
            server.tiny[env] = json.loads(run.stdout.strip().splitlines()[-1])
        yield server
    finally:
        server.stop()


def worker_info(server, model: str) -> dict:
    workers = [w for w in server.workers() if w["model"] == model]
    assert workers, server.client.get("/v1/status").text
    with httpx.Client(transport=httpx.HTTPTransport(uds=workers[0]["address"]), base_url="http://worker",
                      timeout=30) as worker:
        return worker.get("/info").json()


def load(server, model: str) -> httpx.Response:
    return server.client.post(f"/v1/models/{model}/load", timeout=600)


def ocr(server, model: str, content: bytes, name: str = "page.png", fmt: str = "text") -> httpx.Response:
    return server.client.post("/v1/ocr", files={"file": (name, content)}, data={"model": model, "format": fmt},
                              timeout=600)


def test_the_envs_build_from_their_locks(gpu_envs):
    for env in ENVS:
        built = gpu_envs.builds[env]
        assert built["status"] == "ready", built
        for package in ("torch", "transformers"):
            assert built["packages"][package] in locked_versions(env, package), (env, package)
    deepseek, mineru, hunyuan = (gpu_envs.builds[e]["packages"] for e in ENVS)
    assert (deepseek["torch"], deepseek["transformers"]) == ("2.6.0", "4.47.1")
    for packages in (mineru, hunyuan):
        assert packages["transformers"].startswith("5.") and packages["torch"].startswith(("2.8.", "2.9."))
    assert mineru["mineru-vl-utils"] in locked_versions("mineru", "mineru-vl-utils")


def test_two_transformers_serve_side_by_side_under_one_gateway(gpu_envs):
    assert load(gpu_envs, "tiny-mineru").status_code == 200
    assert load(gpu_envs, "deepseek-env-probe").status_code == 200
    live = {w["model"]: w for w in gpu_envs.workers()}
    assert {"tiny-mineru", "deepseek-env-probe"} <= set(live)

    probe = gpu_envs.client.post("/v1/models/deepseek-env-probe/infer",
                                 json={"packages": ["transformers", "torch"]}, timeout=60)
    assert probe.status_code == 200, probe.text
    assert probe.json()["packages"] == {"transformers": "4.47.1", "torch": "2.6.0"}
    mineru = worker_info(gpu_envs, "tiny-mineru")["packages"]
    assert mineru["transformers"] == gpu_envs.builds["mineru"]["packages"]["transformers"]
    assert mineru["transformers"].startswith("5.")
    assert {w["model"] for w in gpu_envs.workers()} >= {"tiny-mineru", "deepseek-env-probe"}  # both still up


def test_deepseek_remote_code_imports_only_in_its_own_env(gpu_envs):
    code = "from transformers.models.llama.modeling_llama import LlamaFlashAttention2"
    for env, ok in (("deepseek-ocr", True), ("mineru", False), ("hunyuan", False)):
        run = subprocess.run([gpu_envs.builds[env]["path"] + "/bin/python", "-c", code],
                             capture_output=True, text=True, timeout=300)
        assert (run.returncode == 0) is ok, (env, run.stderr[-500:])
    # The backend checks the import itself: in a transformers-5 env the model fails with the fix.
    r = load(gpu_envs, "deepseek-in-mineru-env")
    assert r.status_code >= 500, r.text
    assert "LlamaFlashAttention2" in r.text and "deepseek-ocr" in r.text, r.text
    # In its own env the same backend gets past that import; on the CPU it then stops, as its code is CUDA-only.
    r = load(gpu_envs, "deepseek-local-on-cpu")
    assert r.status_code >= 500, r.text
    assert "runs on CUDA only" in r.text and "LlamaFlashAttention2" not in r.text, r.text


def test_deepseek_without_weights_fails_once_and_names_the_pull_command(gpu_envs):
    r = load(gpu_envs, "deepseek-ai/DeepSeek-OCR")
    assert r.status_code >= 500, r.text
    model = gpu_envs.client.get("/v1/models/deepseek-ai/DeepSeek-OCR").json()
    assert model["state"] == "failed" and model["spawns"] == 1, model
    assert "venvserve models pull deepseek-ai/DeepSeek-OCR" in model["failed_reason"], model
    r = ocr(gpu_envs, "deepseek-ai/DeepSeek-OCR", image_bytes(render_lines(["Hello"])))
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_failed", r.text
    assert gpu_envs.client.get("/v1/models/deepseek-ai/DeepSeek-OCR").json()["spawns"] == 1  # not retried


def test_tiny_mineru_reads_pages_through_both_passes(gpu_envs):
    page = render_lines(["Invoice 2024-117", "Total due: 1,234.56 EUR"], size=32, width=600)
    r = ocr(gpu_envs, "tiny-mineru", image_bytes(page))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tiny-mineru" and [p["page"] for p in body["pages"]] == [1]
    # The layout pass found a text block and the content pass read it: its answer is the page's text.
    assert "<|ref_start|>text<|ref_end|>" in body["text"]
    pages = [page, render_lines(["Second page"], size=32, width=500)]
    pdf = image_bytes(pages[0], "PDF", save_all=True, append_images=pages[1:], resolution=100)
    r = ocr(gpu_envs, "tiny-mineru", pdf, "two.pdf", fmt="markdown")
    assert r.status_code == 200, r.text
    assert [p["page"] for p in r.json()["pages"]] == [1, 2]
    assert all(p["text"] for p in r.json()["pages"])


def test_tiny_hunyuan_reads_a_page(gpu_envs):
    r = ocr(gpu_envs, "tiny-hunyuan", image_bytes(render_lines(["Hello world"], size=32)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["page"] for p in body["pages"]] == [1]
    assert isinstance(body["text"], str) and body["text"]
    info = worker_info(gpu_envs, "tiny-hunyuan")["packages"]
    built = gpu_envs.builds["hunyuan"]["packages"]
    assert (info["torch"], info["transformers"]) == (built["torch"], built["transformers"])
    assert gpu_envs.tiny["hunyuan"]["transformers"] == built["transformers"]


def test_gpu_models_on_the_cpu_say_so(gpu_envs):
    models = {m["id"]: m for m in gpu_envs.client.get("/v1/models").json()["data"]}
    for model in ("tiny-mineru", "tiny-hunyuan"):
        assert models[model]["device"] == "cpu"
        assert models[model]["available"] is True
        assert models[model]["reason"].startswith("runs on the CPU (slow)"), models[model]
    assert models["deepseek-env-probe"]["reason"] is None  # echo is no GPU model
