"""A model's own `pdf_dpi` in the catalog: its PDF pages are rendered at that resolution, through
POST /v1/ocr and through jobs, and the worker is told the dpi the page was rendered at."""

import io
import json

from PIL import Image

from support import wait_until

# Two echo models that answer a page's pixel size and the request's `dpi` key ("400x200 @200.0").
CATALOG = [{"id": "echo", "architecture": "echo"},
           {"id": "echo-100", "architecture": "echo", "pdf_dpi": 100}]
ENV = {"VENVSERVE_PDF_DPI": "200"}
OPTIONS = json.dumps({"dims": True, "show_dpi": True})


def one_page_pdf() -> bytes:
    """A page of 144 × 72 points (2 × 1 inches): 200 × 100 pixels at 100 dpi, 400 × 200 at 200."""
    out = io.BytesIO()
    Image.new("L", (144, 72), 255).save(out, "PDF", resolution=72)
    return out.getvalue()


def test_a_model_with_pdf_dpi_gets_its_pdf_pages_at_that_resolution(server_factory):
    server = server_factory(CATALOG, env=ENV)
    pdf = one_page_pdf()
    texts = {}
    for model in ("echo", "echo-100"):
        r = server.client.post("/v1/ocr", files={"file": ("page.pdf", pdf, "application/pdf")},
                               data={"model": model, "options": OPTIONS})
        assert r.status_code == 200, r.text
        texts[model] = [p["text"] for p in r.json()["pages"]]
    assert texts == {"echo": ["400x200 @200.0"], "echo-100": ["200x100 @100.0"]}

    listed = {m["id"]: m["pdf_dpi"] for m in server.client.get("/v1/models").json()["data"]}
    assert listed == {"echo": 200, "echo-100": 100}

    # A job's pages render at the dpi of the job's model.
    r = server.client.post("/v1/jobs", files={"file": ("page.pdf", pdf, "application/pdf")},
                           data={"model": "echo-100", "options": OPTIONS})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    wait_until(lambda: server.client.get(f"/v1/jobs/{job_id}").json()["status"] not in ("queued", "running"),
               timeout=60, interval=0.1)
    result = server.client.get(f"/v1/jobs/{job_id}/result").json()
    assert [p["text"] for f in result["files"] for p in f["pages"]] == ["200x100 @100.0"]
