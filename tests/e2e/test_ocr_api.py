"""OCR through the HTTP API with real engines, each in its own uv env.

All tests here share the session's `ocr_server` (default catalog): the three
OCR envs are built once, on first use, and the workers stay up between tests.
"""

import re
from pathlib import Path

import pytest

from support import FONT, cer, image_bytes, normalise_lines, pid_alive, render_lines, wait_until

LINES = [
    "Invoice 2024-117 for Acme Corporation",
    "Total amount due: 1,234.56 EUR",
    "Please pay within thirty days.",
]

# Font size per model. rapidocr (PP-OCRv6) and tesseract read DejaVu Sans at 40 px
# without trouble. rapidocr-v4 (PP-OCRv4) drops the spaces between words at
# sizes <= 40 (measured: "thelazy" at 32 px) and reads them again from 48 px
# on, so it gets 48 px. For every model the comparison collapses runs of
# whitespace (normalise_lines) and nothing else: the line breaks, the
# characters and a single space between words still count in the CER.
FONT_SIZE = {"rapidocr": 40, "rapidocr-v4": 48, "tesseract": 40}
MODELS = list(FONT_SIZE)
MAX_CER = 0.05


def ocr(server, data: bytes, filename: str, model: str | None = None, **fields):
    form = {k: v for k, v in {"model": model, **fields}.items() if v is not None}
    return server.client.post("/v1/ocr", files={"file": (filename, data, "application/octet-stream")}, data=form)


def assert_text(expected_lines: list[str], got: str) -> None:
    expected, got = normalise_lines("\n".join(expected_lines)), normalise_lines(got)
    rate = cer(expected, got)
    assert rate <= MAX_CER, f"CER {rate:.3f} > {MAX_CER}: expected {expected!r}, got {got!r}"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("model", MODELS)
def test_ocr_reads_printed_lines(ocr_server, model, fmt):
    image = render_lines(LINES, size=FONT_SIZE[model])
    data = image_bytes(image, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    r = ocr(ocr_server, data, f"lines.{fmt.lower()}", model)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == model
    assert len(body["pages"]) == 1 and body["pages"][0]["page"] == 1
    assert body["pages"][0]["text"] == body["text"]
    assert_text(LINES, body["text"])
    timing = body["timing_ms"]
    assert timing["total"] >= timing["inference"] > 0


def render_paragraphs(paragraphs: list[list[str]], size: int, pitch: float = 1.3):
    """Single-spaced lines (pitch 1.3 x the font size), one empty line between paragraphs.

    render_lines' 1.8 pitch is double spacing: there tesseract's layout
    analysis (rightly) makes every line a paragraph of its own, so it cannot
    show the difference between a line break and a paragraph break.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, size)
    lines = [line for i, p in enumerate(paragraphs) for line in ([""] if i else []) + p]
    width = max(font.getbbox(line)[2] for line in lines if line) + 2 * size
    image = Image.new("RGB", (width, int(len(lines) * size * pitch + 2 * size)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size + i * size * pitch), line, fill="black", font=font)
    return image


@pytest.mark.parametrize("model", MODELS)
def test_markdown_separates_paragraphs_by_a_blank_line(ocr_server, model):
    first = ["First paragraph begins here", "and goes on for another line."]
    second = ["Second paragraph stands alone."]
    image = render_paragraphs([first, second], size=FONT_SIZE[model])
    r = ocr(ocr_server, image_bytes(image), "paras.png", model, format="markdown")
    assert r.status_code == 200, r.text
    text = r.json()["text"]
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]
    assert len(paragraphs) == 2, f"expected 2 paragraphs separated by a blank line, got {text!r}"
    assert len(normalise_lines(paragraphs[0]).splitlines()) == 1, text  # a paragraph's lines are joined
    assert_text(first, paragraphs[0])
    assert_text(second, paragraphs[1])

    # The same image as plain text: no blank line, the lines in order.
    r = ocr(ocr_server, image_bytes(image), "paras.png", model, format="text")
    assert r.status_code == 200, r.text
    assert "\n\n" not in r.json()["text"].strip()
    assert_text(first + second, r.json()["text"])


def test_default_model_is_rapidocr(ocr_server):
    r = ocr(ocr_server, image_bytes(render_lines(LINES[:1])), "one.png")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "rapidocr"
    assert_text(LINES[:1], r.json()["text"])


@pytest.mark.parametrize("model", ["rapidocr", "tesseract"])
def test_two_page_pdf_is_answered_page_by_page(ocr_server, tmp_path, model):
    page1 = ["Page one talks about apples", "and green pears."]
    page2 = ["Page two is about rivers", "and 42 bridges."]
    images = [render_lines(lines, size=FONT_SIZE[model], width=1100) for lines in (page1, page2)]
    pdf = tmp_path / "two.pdf"
    # resolution=200: the gateway rasterises at 200 dpi, so the pages come back at these pixel sizes.
    images[0].save(pdf, "PDF", save_all=True, append_images=images[1:], resolution=200.0)
    r = ocr(ocr_server, pdf.read_bytes(), "two.pdf", model)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["page"] for p in body["pages"]] == [1, 2]
    assert_text(page1, body["pages"][0]["text"])
    assert_text(page2, body["pages"][1]["text"])
    # The whole text holds both pages, in order, separated by a blank line.
    assert body["text"] == body["pages"][0]["text"] + "\n\n" + body["pages"][1]["text"]


def test_rapidocr_and_v4_serve_at_the_same_time_from_their_own_envs(ocr_server):
    client = ocr_server.client
    for model in ("rapidocr", "rapidocr-v4"):
        r = client.post(f"/v1/models/{model}/load")
        assert r.status_code == 200, r.text
    # Both answer, one after the other, while both stay up.
    for model in ("rapidocr", "rapidocr-v4"):
        r = ocr(ocr_server, image_bytes(render_lines(LINES, size=FONT_SIZE[model])), "x.png", model)
        assert r.status_code == 200, r.text
        assert_text(LINES, r.json()["text"])

    workers = {}
    for w in ocr_server.workers():
        if w["model"] in ("rapidocr", "rapidocr-v4") and w["state"] in ("ready", "busy"):
            workers.setdefault(w["model"], w)
    assert set(workers) == {"rapidocr", "rapidocr-v4"}, ocr_server.workers()
    a, b = workers["rapidocr"], workers["rapidocr-v4"]
    assert a["pid"] != b["pid"]
    assert pid_alive(a["pid"]) and pid_alive(b["pid"])
    assert a["env"] == "rapidocr" and b["env"] == "rapidocr-v4"
    envs_root = ocr_server.data_dir / "envs"
    assert Path(a["python"]).is_relative_to(envs_root / "rapidocr"), a
    assert Path(b["python"]).is_relative_to(envs_root / "rapidocr-v4"), b

    # Each live process has cv2 mapped from its own env's site-packages.
    for w in (a, b):
        maps = Path(f"/proc/{w['pid']}/maps").read_text()
        cv2_files = {line.split()[-1] for line in maps.splitlines() if "/cv2/" in line}
        assert cv2_files, f"worker {w['model']} has no cv2 mapped"
        assert all(Path(f).is_relative_to(envs_root / w["env"]) for f in cv2_files), cv2_files

    headless = client.get("/v1/envs/rapidocr").json()
    gui = client.get("/v1/envs/rapidocr-v4").json()
    assert headless["status"] == gui["status"] == "ready"
    assert "opencv-python-headless" in headless["packages"], headless["packages"]
    assert "opencv-python" not in headless["packages"], headless["packages"]
    assert "opencv-python" in gui["packages"], gui["packages"]
    assert "opencv-python-headless" not in gui["packages"], gui["packages"]
    assert "rapidocr" in headless["packages"] and "rapidocr-onnxruntime" in gui["packages"]
    version = tuple(int(x) for x in gui["python_version"].split(".")[:2])
    assert (3, 9) <= version < (3, 13), gui["python_version"]


def test_a_client_that_leaves_cancels_its_pages(server_factory, tmp_path):
    """A 100-page PDF at 0.3 s a page; the client gives up after 1.5 s: the rest is never rendered or read."""
    import httpx

    server = server_factory([{"id": "echo", "architecture": "echo", "task": "ocr", "max_concurrency": 1}])
    pages = [render_lines([f"page {i}"], size=20) for i in range(100)]
    pdf = image_bytes(pages[0], "PDF", save_all=True, append_images=pages[1:], resolution=72.0)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(server.url + "/v1/ocr", files={"file": ("long.pdf", pdf)},
                   data={"model": "echo", "options": '{"sleep_s": 0.3}'}, timeout=1.5)

    # The request ends as 499 once its page tasks are cancelled; nothing can be fed after that.
    wait_until(lambda: "POST /v1/ocr 499" in server.output(), timeout=30)
    workers = wait_until(lambda: [w for w in server.workers() if w["model"] == "echo" and w["in_flight"] == 0])
    served = sum(w["requests"] for w in workers)
    assert served < 20, served  # ~5 pages fit in 1.5 s; all 100 would take 30 s
    spool = server.data_dir / "spool"
    assert not [p for p in spool.rglob("page-*.png")], list(spool.rglob("*"))


def test_a_cold_start_is_reported_as_load_not_inference(server_factory):
    # The first request waits for the model to load (1.5 s here); timing_ms says so under `load`,
    # and `inference` is the page's own time. The next request waits for nothing.
    server = server_factory([{"id": "slow-echo", "architecture": "echo", "options": {"load_s": 1.5}}])
    image = image_bytes(render_lines(["timing"], size=30))
    first = server.client.post("/v1/ocr", files={"file": ("a.png", image, "image/png")}, data={"model": "slow-echo"})
    assert first.status_code == 200, first.text
    timing = first.json()["timing_ms"]
    assert {"upload", "decode", "load", "queue", "inference", "total"} <= set(timing), timing
    assert timing["load"] >= 1500
    assert timing["inference"] < timing["load"]
    assert timing["total"] >= timing["load"] + timing["inference"]
    second = server.client.post("/v1/ocr", files={"file": ("a.png", image, "image/png")}, data={"model": "slow-echo"})
    assert second.status_code == 200, second.text
    assert "load" not in second.json()["timing_ms"] and "env_build" not in second.json()["timing_ms"]


def test_status_shows_the_decoder_processes(server_factory):
    server = server_factory([{"id": "echo", "architecture": "echo"}])
    image = image_bytes(render_lines(["decoders"], size=30))
    assert server.client.post("/v1/ocr", files={"file": ("a.png", image, "image/png")}).status_code == 200
    decoders = server.client.get("/v1/status").json()["decoders"]
    assert decoders["size"] >= 1 and decoders["started"] >= 1 and decoders["deaths"] == 0
    assert decoders["busy"] == 0
