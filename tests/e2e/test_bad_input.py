"""Bad input: each gets a JSON error with a fitting status, and the next good request succeeds."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from support import ROOT, assert_error, cer, image_bytes, normalise_lines, render_lines

GOOD_LINE = "Good request after a bad one"


def good_png() -> bytes:
    return image_bytes(render_lines([GOOD_LINE], size=40))


def assert_good_ocr(server, model: str = "tesseract") -> None:
    """A clean image OCR'd right by ``model`` (tesseract: the fastest real engine)."""
    r = server.client.post("/v1/ocr", files={"file": ("good.png", good_png())}, data={"model": model})
    assert r.status_code == 200, r.text
    assert cer(GOOD_LINE, normalise_lines(r.json()["text"])) <= 0.05, r.json()["text"]


def post_file(server, data: bytes, name: str = "upload.bin", model: str = "tesseract", **fields):
    return server.client.post("/v1/ocr", files={"file": (name, data, "application/octet-stream")},
                              data={"model": model, **fields})


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def jpeg_bytes() -> bytes:
    return image_bytes(render_lines(["A JPEG that ends too early"], size=40), "JPEG", quality=90)


# (case id, request maker, status, code). Each request goes through tesseract
# unless it says otherwise; the good request after it goes through tesseract.
CASES = [
    ("empty_file", lambda s: post_file(s, b"", "empty.png"), 400, "empty_file"),
    ("neither_image_nor_pdf", lambda s: post_file(s, b"hello, this is plain text\n" * 20, "notes.txt"),
     415, "unsupported_media_type"),
    ("truncated_png", lambda s: post_file(s, truncated(good_png()), "cut.png"), 400, "invalid_image"),
    # JPEG truncation passes the gateway's header check; the backend's full decode catches it.
    ("truncated_jpeg_rapidocr", lambda s: post_file(s, truncated(jpeg_bytes()), "cut.jpg", model="rapidocr"),
     400, "invalid_image"),
    ("gif", lambda s: post_file(s, image_bytes(render_lines(["gif"], size=30), "GIF"), "x.gif"),
     415, "unsupported_media_type"),
    ("unknown_model", lambda s: post_file(s, good_png(), "x.png", model="no-such-model"), 404, "model_not_found"),
    ("bad_format", lambda s: post_file(s, good_png(), "x.png", format="html"), 400, "invalid_format"),
    ("missing_file_field", lambda s: s.client.post("/v1/ocr", data={"model": "tesseract"},
                                                   files={"document": ("x.png", good_png())}),
     400, "missing_file"),
    ("no_fields_at_all", lambda s: s.client.post(
        "/v1/ocr", content=b"--b\r\n\r\n--b--\r\n", headers={"content-type": "multipart/form-data; boundary=b"}),
     400, "missing_file"),
    ("json_body", lambda s: s.client.post("/v1/ocr", json={"file": "x.png"}), 400, "invalid_request"),
    ("raw_png_body", lambda s: s.client.post("/v1/ocr", content=good_png(), headers={"content-type": "image/png"}),
     400, "invalid_request"),
    ("corrupt_pdf", lambda s: post_file(s, b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a pdf\n", "bad.pdf"),
     400, "invalid_pdf"),
    ("truncated_pdf", lambda s: post_file(s, truncated(pdf_bytes()), "cut.pdf"), 400, "invalid_pdf"),
    # 60000×60000 pixels in ~0.5 MB: refused from its header, before anything decodes it.
    ("png_bomb", lambda s: post_file(s, hostile().png_bomb(), "bomb.png"), 413, "image_too_large"),
    ("pdf_over_the_page_limit", lambda s: post_file(s, hostile().text_pdf(300), "long.pdf"), 400, "too_many_pages"),
    ("bad_options_json", lambda s: post_file(s, good_png(), "x.png", options="{not json"), 400, "invalid_options"),
    ("echo_invalid_json", lambda s: s.client.post("/v1/models/echo/infer", content=b"{not json",
                                                  headers={"content-type": "application/json"}),
     400, None),
    ("echo_json_array", lambda s: s.client.post("/v1/models/echo/infer", json=[1, 2]), 400, None),
    ("infer_unknown_model", lambda s: s.client.post("/v1/models/nope/infer", json={}), 404, "model_not_found"),
    ("unknown_env", lambda s: s.client.get("/v1/envs/nope"), 404, "env_not_found"),
]


def hostile():
    """scripts/hostile_corpus.py as a module (it writes bombs without Pillow)."""
    spec = importlib.util.spec_from_file_location("hostile_corpus", ROOT / "scripts" / "hostile_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pdf_bytes() -> bytes:
    a, b = render_lines(["page one"], size=40), render_lines(["page two"], size=40)
    return image_bytes(a, "PDF", save_all=True, append_images=[b], resolution=200.0)


@pytest.mark.parametrize("make, status, code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_then_good_request(ocr_server, make, status, code):
    assert_error(make(ocr_server), status, code)
    assert_good_ocr(ocr_server)


def test_truncated_jpeg_then_good_request_on_the_same_worker(ocr_server):
    """A backend error does not take the worker down: the same pid serves the next request."""
    r = post_file(ocr_server, truncated(jpeg_bytes()), "cut.jpg", model="rapidocr")
    assert_error(r, 400, "invalid_image")
    pids = {w["pid"] for w in ocr_server.workers() if w["model"] == "rapidocr"}
    assert_good_ocr(ocr_server, "rapidocr")
    assert pids == {w["pid"] for w in ocr_server.workers() if w["model"] == "rapidocr"}


def test_file_over_the_size_limit(server_factory, shared_data_dir):
    server = server_factory(args=("--max-upload-mb", "1"), data_dir=shared_data_dir)
    big = good_png() + os.urandom(2 * 2**20)  # a valid PNG with 2 MiB of trailing bytes
    error = assert_error(post_file(server, big, "big.png"), 413, "file_too_large")
    assert "1 MB" in error["message"]
    # Under the limit goes through; the spool keeps nothing of the refused upload.
    assert_good_ocr(server)
    spool = shared_data_dir / "spool" / str(server.pid)
    assert not [p for p in spool.rglob("*") if p.is_file()], list(spool.rglob("*"))


def test_unavailable_models(server_factory, tmp_path):
    """tesseract without its binary on PATH, and a model whose interpreter does not exist."""
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    catalog = [
        {"id": "tesseract", "architecture": "tesseract", "python_env": "tesseract"},
        {"id": "ghost", "architecture": "echo", "python": str(tmp_path / "no-such-venv" / "bin" / "python")},
        {"id": "echo", "architecture": "echo"},
    ]
    # The server runs from an absolute interpreter path and finds uv in its own
    # package, so a PATH with nothing on it is enough for everything but tesseract.
    server = server_factory(catalog, env={"PATH": str(empty_bin)})
    models = {m["id"]: m for m in server.client.get("/v1/models").json()["data"]}
    assert models["tesseract"]["available"] is False
    assert "tesseract" in models["tesseract"]["reason"] and "apt-get install" in models["tesseract"]["reason"]
    assert models["ghost"]["available"] is False
    assert "no-such-venv" in models["ghost"]["reason"]
    assert models["echo"]["available"] is True and models["echo"]["reason"] is None
    one = server.client.get("/v1/models/ghost").json()
    assert one["available"] is False and one["reason"] == models["ghost"]["reason"]

    for model in ("tesseract", "ghost"):
        assert_error(post_file(server, good_png(), "x.png", model=model), 503, "model_unavailable")
        assert_error(server.client.post(f"/v1/models/{model}/infer", json={}), 503, "model_unavailable")
        # The good request after it: the echo model in the gateway's interpreter.
        r = server.client.post("/v1/models/echo/infer", json={"after": model})
        assert r.status_code == 200 and r.json()["after"] == model, r.text
        assert r.json()["python"]["executable"] == sys.executable
    # Nothing was built or spawned for the unavailable models.
    assert not (server.data_dir / "envs" / "tesseract").exists()
    assert {w["model"] for w in server.workers()} == {"echo"}
    assert Path(server.data_dir).is_dir()
