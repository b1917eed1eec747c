"""The catalog on Ray Serve (issue 7): a private one-node Ray cluster on loopback
(2 CPUs), the ingress + echo + rapidocr + an echo probe inside the rapidocr env.

One deploy serves every test of this module: `python -m venvserve.ray deploy
--address local` runs in its own session (process group) and is stopped with
SIGTERM (Serve and Ray shut down), then anything left in its group is killed.
"""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from support import ROOT, assert_error, cer, free_port, image_bytes, normalise_lines, render_lines

PY = sys.version.split()[0]
ray = pytest.importorskip("ray", reason=f"Ray cannot be installed on this Python ({PY}): pip install 'ray[serve]'")
pytest.importorskip("ray.serve", reason=f"ray[serve] is not installed on this Python ({PY}): pip install 'ray[serve]'")

pytestmark = pytest.mark.timeout(300)

READY = "venvserve-ray: ready "
DEPLOY_TIMEOUT_S = 240
MODELS = ("echo", "rapidocr", "probe")


def _catalog() -> list[dict]:
    shipped = {m["id"]: m for m in json.loads((ROOT / "models.json").read_text())}
    return [
        shipped["rapidocr"],
        shipped["echo"],
        {"id": "probe", "architecture": "echo", "python_env": "rapidocr", "task": "generic",
         "description": "echo in the rapidocr env: reports its interpreter and packages"},
        shipped["rapidocr-v4"],  # listed, not deployed (not in --models)
    ]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the deploy command shuts Serve and Ray down
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    try:  # whatever Ray left in the deploy's own process group (raylet, agents, replicas)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(10)


@pytest.fixture(scope="module")
def ray_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    (tmp / "models.json").write_text(json.dumps(_catalog()))
    # Ray's session folder holds Unix sockets (<= 107 bytes): keep it short, and private.
    temp_dir = tempfile.mkdtemp(prefix="vsray-", dir="/tmp")
    port = free_port()
    log = tmp / "deploy.log"
    cmd = [sys.executable, "-m", "venvserve.ray", "deploy", "--address", "local", "--num-cpus", "2",
           "--object-store-mb", "128", "--temp-dir", temp_dir, "--host", "127.0.0.1", "--port", str(port),
           "--catalog", str(tmp / "models.json"), "--envs-dir", str(ROOT / "envs"),
           "--data-dir", str(tmp / "data"), "--models", ",".join(MODELS), "--cpus-per-replica", "0.5",
           "--timeout", str(DEPLOY_TIMEOUT_S - 20)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=tmp, env=env,
                            start_new_session=True)
    try:
        ready = None
        while time.monotonic() - t0 < DEPLOY_TIMEOUT_S:
            lines = [l for l in log.read_text(errors="replace").splitlines() if l.startswith(READY)]
            if lines:
                ready = json.loads(lines[0][len(READY):])
                break
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        if ready is None:
            pytest.fail(f"the Ray deploy was not ready within {DEPLOY_TIMEOUT_S}s (exit {proc.poll()}):\n"
                        + log.read_text(errors="replace")[-6000:])
        print(f"\nRay {ray.__version__}: deployed {ready['models']} in {time.monotonic() - t0:.1f}s")
        with httpx.Client(base_url=ready["url"], timeout=120) as client:
            client.log = log
            yield client
    finally:
        _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ocr_through_the_ingress(ray_app, tmp_path):
    lines = ["Ray Serve reads this line", "Each model in its own env 42"]
    png = image_bytes(render_lines(lines))
    r = ray_app.post("/v1/ocr", files={"file": ("page.png", png, "image/png")}, data={"model": "rapidocr"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"model", "format", "text", "pages", "timing_ms"}, body
    assert body["model"] == "rapidocr" and body["format"] == "text"
    assert [p["page"] for p in body["pages"]] == [1]
    assert set(body["timing_ms"]) == {"upload", "decode", "inference", "total"}
    expected = "\n".join(lines)
    assert cer(expected, normalise_lines(body["text"])) < 0.05, body["text"]


def test_pages_travel_as_bytes(ray_app):
    """The ingress rasterises PDFs; the replica gets every page's bytes, never an ingress path."""
    png = image_bytes(render_lines(["bytes, not paths"]))
    r = ray_app.post("/v1/ocr", files={"file": ("p.png", png, "image/png")}, data={"model": "echo"})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == f"{len(png)} bytes"  # echo reports the size of the file it was handed

    first, second = render_lines(["Page one"]), render_lines(["Page two", "and more"])
    pdf = image_bytes(first, "PDF", save_all=True, append_images=[second])
    r = ray_app.post("/v1/ocr", files={"file": ("doc.pdf", pdf, "application/pdf")},
                     data={"model": "rapidocr", "format": "markdown"})
    assert r.status_code == 200, r.text
    pages = r.json()["pages"]
    assert [p["page"] for p in pages] == [1, 2]
    assert "Page one" in pages[0]["text"] and "Page two" in pages[1]["text"], pages


def test_replica_runs_on_its_envs_interpreter_and_packages(ray_app):
    wanted = ["rapidocr", "opencv-python-headless", "opencv-python", "onnxruntime", "ray"]
    r = ray_app.post("/v1/models/probe/infer", json={"packages": wanted})
    assert r.status_code == 200, r.text
    probe = r.json()
    packages = probe["packages"]
    assert packages["rapidocr"] and packages["opencv-python-headless"] and packages["onnxruntime"], packages
    assert packages["opencv-python"] is None, packages  # the template excludes the GUI build
    assert packages["ray"] == ray.__version__, packages  # the same Ray as the cluster, added to the lock
    # ... and the driver's interpreter has none of the model's packages.
    assert importlib.util.find_spec("rapidocr") is None
    # (A venv's python is a symlink to its base interpreter: compare the envs, not the binaries.)
    assert probe["python"]["executable"] != sys.executable
    assert not probe["python"]["executable"].startswith(sys.prefix + os.sep)

    status = ray_app.get("/v1/status").json()["models"]
    replica = status["rapidocr"]["replica"]
    assert status["rapidocr"]["status"] == "HEALTHY", status["rapidocr"]
    # The replica's interpreter is the env that `uv run` synced from the template's lock,
    # inside the runtime_env's working_dir on its node.
    prefix = replica["python"]["prefix"]
    assert "runtime_resources" in prefix and prefix.endswith("/.venv"), replica
    assert replica["python"]["executable"].startswith(prefix), replica
    assert all(p.startswith(prefix) for p in replica["site_packages"]), replica
    assert replica["packages"]["rapidocr"] == packages["rapidocr"], replica
    assert probe["python"]["executable"] == replica["python"]["executable"]  # one env, both deployments
    # echo has no python_env: it runs on the cluster's own interpreter.
    echo = status["echo"]["replica"]
    assert "runtime_resources" not in echo["python"]["prefix"], echo


def test_same_api_shapes_and_errors(ray_app):
    assert ray_app.get("/healthz").json()["status"] == "ok"
    listing = ray_app.get("/v1/models").json()
    assert listing["object"] == "list"
    entries = {m["id"]: m for m in listing["data"]}
    assert set(entries) == {"rapidocr", "echo", "probe", "rapidocr-v4"}
    assert entries["rapidocr"]["available"] and entries["rapidocr"]["state"] == "loaded"
    assert entries["rapidocr"]["default"] is True
    assert entries["rapidocr-v4"]["available"] is False and "not selected" in entries["rapidocr-v4"]["reason"]
    assert ray_app.get("/v1/models/echo").json()["id"] == "echo"

    png = image_bytes(render_lines(["x"]))
    assert_error(ray_app.get("/v1/models/nope"), 404, "model_not_found")
    assert_error(ray_app.post("/v1/ocr", files={"file": ("p.png", png)}, data={"model": "nope"}), 404,
                 "model_not_found")
    assert_error(ray_app.post("/v1/ocr", files={"file": ("p.png", png)}, data={"model": "rapidocr-v4"}), 503,
                 "model_unavailable")
    assert_error(ray_app.post("/v1/ocr", files={"file": ("e.png", b"")}), 400, "empty_file")
    assert_error(ray_app.post("/v1/ocr", files={"file": ("g.gif", b"GIF89a" + b"\0" * 32)}), 415,
                 "unsupported_media_type")
    # Documents are decoded in the ingress's decoder processes: a corrupt one is the client's 400.
    assert_error(ray_app.post("/v1/ocr", files={"file": ("c.pdf", b"%PDF-1.7\nnot a pdf at all")},
                              data={"model": "echo"}), 400, "invalid_pdf")
    assert_error(ray_app.post("/v1/ocr", files={"file": ("t.png", png[: len(png) // 2])}, data={"model": "echo"}),
                 400, "invalid_image")
    assert_error(ray_app.post("/v1/ocr", files={"file": ("p.png", png)}, data={"format": "html"}), 400,
                 "invalid_format")
    assert_error(ray_app.post("/v1/ocr", files={"file": ("p.png", png)}, data={"model": "probe"}), 400,
                 "wrong_task")
    assert_error(ray_app.post("/v1/models/echo/infer", json={"images": ["/etc/passwd"]}), 400, "reserved_field")
    assert_error(ray_app.post("/v1/models/echo/infer", json={"raise": "boom"}), 500, "backend_error")
    assert_error(ray_app.get("/nowhere"), 404)
