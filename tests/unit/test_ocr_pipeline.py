"""The OCR pipeline with stand-in decoders and a stand-in "call one page": order, layout, failures,
cancellation, and the options a client may send."""

import asyncio
from pathlib import Path

import pytest

from venvserve import ocr
from venvserve.errors import BadRequest, ClientGone, VenvserveError


class FakeDecoders:
    """Renders page i as a file named after it; records what it was asked."""

    size = 2

    def __init__(self, pages: int, fail_at: int | None = None, render_s: float = 0.0):
        self.pages, self.fail_at, self.render_s = pages, fail_at, render_s
        self.rendered: list[int] = []
        self.released = 0

    async def count_pages(self, path, max_pages):
        if self.pages > max_pages:
            raise BadRequest("too many", code="too_many_pages")
        return self.pages

    async def check_image(self, path):
        return {"format": "PNG", "width": 1, "height": 1}

    async def render(self, path, index, out, dpi):
        await asyncio.sleep(self.render_s)
        if index == self.fail_at:
            raise VenvserveError("cannot render", code="invalid_pdf", status=400)
        self.rendered.append(index)
        out.write_bytes(b"x" * (index + 1))
        return {"path": str(out), "dpi": dpi, "width": 1, "height": 1}

    async def release(self, path):
        self.released += 1


def pdf_file(tmp_path: Path) -> Path:
    path = tmp_path / "doc.pdf"
    path.write_bytes(b"%PDF-1.7\n")
    return path


def run(decoders, call, path, **kw):
    args = dict(model_id="m", fmt="text", options={"k": 1}, dpi=150, max_pages=100, concurrency=2)
    args.update(kw)
    return asyncio.run(ocr.run(decoders, call, path, path.stat().st_size, path.parent, **args))


def test_pages_come_back_in_order_with_the_worker_request_shape(tmp_path):
    seen = []

    async def call(request):
        seen.append(request)
        size = Path(request["images"][0]).stat().st_size
        await asyncio.sleep(0.01 * (5 - size % 5))  # later pages may finish first
        return {"pages": [{"page": 1, "text": f"p{size}"}]}

    decoders = FakeDecoders(6)
    answer = run(decoders, call, pdf_file(tmp_path))
    assert [p["text"] for p in answer["pages"]] == [f"p{i}" for i in range(1, 7)]
    assert [p["page"] for p in answer["pages"]] == list(range(1, 7))
    assert answer["text"] == "\n\n".join(f"p{i}" for i in range(1, 7))
    assert set(answer["timing_ms"]) == {"decode", "inference", "total"}
    assert {tuple(sorted(r)) for r in seen} == {("dpi", "format", "images", "options", "task")}
    assert all(r["task"] == "ocr" and r["dpi"] == 150 and r["options"] == {"k": 1} for r in seen)
    assert not list(tmp_path.glob("page-*.png"))  # every rendered page deleted after its call
    assert decoders.released == 1


def test_an_image_is_its_own_single_page_without_dpi(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    seen = []

    async def call(request):
        seen.append(request)
        return {"pages": [{"page": 1, "text": "hello"}]}

    answer = run(FakeDecoders(0), call, path)
    assert answer["text"] == "hello" and answer["pages"] == [{"page": 1, "text": "hello"}]
    assert "dpi" not in seen[0] and seen[0]["images"] == [str(path)]
    assert path.exists()  # the upload itself is not ours to delete


def test_a_failing_page_fails_the_request_and_stops_the_rest(tmp_path):
    calls = []

    async def call(request):
        calls.append(request)
        await asyncio.sleep(0.01)
        return {"pages": [{"text": "t"}]}

    decoders = FakeDecoders(50, fail_at=3, render_s=0.005)
    with pytest.raises(VenvserveError) as info:
        run(decoders, call, pdf_file(tmp_path))
    assert info.value.code == "invalid_pdf"
    assert len(decoders.rendered) < 10 and len(calls) < 10
    assert decoders.released == 1


def test_a_client_that_leaves_cancels_every_page(tmp_path, monkeypatch):
    monkeypatch.setattr("venvserve.ocr.pipeline.POLL_S", 0.01)
    calls = []
    gone = asyncio.Event()

    async def call(request):
        calls.append(request)
        if len(calls) == 2:
            gone.set()
        await asyncio.sleep(0.05)
        return {"pages": [{"text": "t"}]}

    async def disconnected():
        return gone.is_set()

    decoders = FakeDecoders(100)
    with pytest.raises(ClientGone):
        run(decoders, call, pdf_file(tmp_path), disconnected=disconnected)
    assert len(calls) <= 4 and len(decoders.rendered) <= 6
    assert decoders.released == 1


def test_layout_keeps_a_failed_pages_error_in_place():
    pages = [{"page": 2, "text": "two"}, ocr.page_error(1, BadRequest("bad page", code="invalid_pdf")),
             {"page": 3, "text": "three"}]
    answer = ocr.layout("m", "text", pages)
    assert [p["page"] for p in answer["pages"]] == [1, 2, 3]
    assert answer["pages"][0] == {"page": 1, "error": {"code": "invalid_pdf", "message": "bad page"}}
    assert answer["text"] == "two\n\nthree"


def test_layout_of_one_page():
    assert ocr.layout("m", "text", [{"page": 1, "text": "a"}])["text"] == "a"
    assert ocr.layout("m", "markdown", [{"page": 1, "text": "a"}])["text"] == "a"


@pytest.mark.parametrize("raw, expected", [(None, {}), ("", {}), ('{"lang": "deu"}', {"lang": "deu"})])
def test_parse_options(raw, expected):
    assert ocr.parse_options(raw) == expected


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "[" * 100_000])
def test_bad_options_are_a_400(raw):
    with pytest.raises(BadRequest) as info:
        ocr.parse_options(raw)
    assert info.value.code == "invalid_options"


def test_formats_and_reserved_keys():
    assert ocr.check_format("markdown") == "markdown"
    with pytest.raises(BadRequest):
        ocr.check_format("html")
    with pytest.raises(BadRequest) as info:
        ocr.check_reserved({"images": ["/etc/passwd"]})
    assert info.value.code == "reserved_field"


@pytest.mark.parametrize("head, kind", [(b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff\xe0", "image/jpeg"),
                                        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"), (b"junk%PDF-1.4", "application/pdf"),
                                        (b"GIF89a", None), (b"", None)])
def test_sniff(head, kind):
    assert ocr.sniff(head) == kind
