"""Hostile documents against a real server (echo model): the gateway answers, and does not move.

The corpus comes from scripts/hostile_corpus.py (bombs, a 5,000-page PDF and a
few hundred byte-level mutants of valid files, from a fixed seed). Decoding
happens in decoder processes: whatever they hit, the gateway answers 2xx or a
JSON 4xx, keeps its memory and its pid, and never loads Pillow or pdfium.
"""

import importlib.util
import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from support import ROOT, Highest, image_bytes, pid_alive, render_lines

ECHO = [{"id": "echo", "architecture": "echo", "task": "ocr", "max_concurrency": 4}]
# Shorter than the defaults so a pathological mutant costs seconds, not a minute.
ENV = {"VENVSERVE_DECODER_TIMEOUT_S": "20", "VENVSERVE_DECODER_CPU_S": "20", "VENVSERVE_DECODERS": "2"}
MB = 1024


def corpus_module():
    spec = importlib.util.spec_from_file_location("hostile_corpus", ROOT / "scripts" / "hostile_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return corpus_module().generate(tmp_path_factory.mktemp("corpus"), seed=11, mutants=300)


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def ocr(server, data: bytes, name: str, **fields):
    return server.client.post("/v1/ocr", files={"file": (name, data, "application/octet-stream")},
                              data={"model": "echo", **fields})


def answered_properly(r) -> bool:
    """2xx, or a 4xx whose body is the JSON error shape."""
    if 200 <= r.status_code < 300:
        return True
    if not 400 <= r.status_code < 500:
        return False
    try:
        body = r.json()
    except ValueError:
        return False
    return set(body) == {"error"} and {"code", "message"} <= set(body["error"])


def warm_up(server) -> None:
    corpus = corpus_module()
    for data, name in ((image_bytes(render_lines(["warm"], size=30)), "w.png"), (corpus.text_pdf(3), "w.pdf"),
                       (b"%PDF-1.7\nnot really", "bad.pdf")):
        assert ocr(server, data, name).status_code in (200, 400)


EXPECTED = {  # the bombs: what each must get
    "bomb-60000x60000.png": {413},
    "bomb-flate-1gib.pdf": {200, 400, 422},  # pdfium may give up on the stream, or the decoder's limits stop it
    "bomb-mediabox-14400pt.pdf": {200},  # rendered at a lower dpi, within max_page_pixels
    "bomb-mediabox-1e9pt.pdf": {200, 413},  # pdfium clamps a MediaBox to 14400 pt: rendered like the one above
    "pages-5000.pdf": {400},
}


def test_every_hostile_document_gets_2xx_or_a_json_4xx_and_the_gateway_does_not_move(server_factory, corpus):
    server = server_factory(ECHO, env=ENV)
    warm_up(server)
    idle = status_kb(server.pid, "VmRSS")
    with Highest(lambda: status_kb(server.pid, "VmRSS")) as rss, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda case: (case, ocr(server, case.path.read_bytes(), case.name)), corpus))
    bad = [(c.name, r.status_code, r.text[:200]) for c, r in answers if not answered_properly(r)]
    assert not bad, bad
    by_name = {c.name: r for c, r in answers}
    for name, statuses in EXPECTED.items():
        assert by_name[name].status_code in statuses, (name, by_name[name].text)
    assert by_name["bomb-60000x60000.png"].json()["error"]["code"] == "image_too_large"
    assert by_name["pages-5000.pdf"].json()["error"]["code"] == "too_many_pages"
    for case, r in answers:  # valid seeds are read, mutants of them at worst refused
        if case.kind == "valid":
            assert r.status_code == 200, (case.name, r.text)
    # The gateway's memory did not move: polled peak and kernel high-water within 50 MB of idle.
    hwm = status_kb(server.pid, "VmHWM")
    assert rss.most <= idle + 50 * MB, (idle, rss.most)
    assert hwm <= idle + 50 * MB, (idle, hwm)
    # Same process, still serving; no decoder crash reached it.
    assert server.proc.poll() is None and pid_alive(server.pid)
    assert ocr(server, image_bytes(render_lines(["after"], size=30)), "after.png").status_code == 200
    statuses = sorted({r.status_code for _, r in answers})
    print(f"\n{len(answers)} documents; statuses {statuses}; gateway RSS idle {idle // MB} MB, "
          f"peak {rss.most // MB} MB, high-water {hwm // MB} MB")


def test_the_gateway_maps_neither_pdfium_nor_pillow_after_ocr(server_factory):
    server = server_factory(ECHO, env=ENV)
    warm_up(server)
    maps = open(f"/proc/{server.pid}/maps").read()
    assert "pdfium" not in maps
    assert "PIL" not in maps and "_imaging" not in maps


def pages_pdf(texts: list[str]) -> bytes:
    images = [render_lines([t], size=24) for t in texts]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=100.0)
    return buf.getvalue()


def expected_sizes(data: bytes, dpi: float) -> list[str]:
    """What the echo model answers for each page: the byte size of the page as the decoder writes it."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    try:
        sizes = []
        for i in range(len(doc)):
            page = doc[i]
            buf = io.BytesIO()
            page.render(scale=dpi / 72).to_pil().save(buf, format="PNG", compress_level=1)
            page.close()
            sizes.append(f"{len(buf.getvalue())} bytes")
        return sizes
    finally:
        doc.close()


def test_twenty_concurrent_multi_page_pdfs_ten_rounds(server_factory):
    """Every answer has its own pages, in order (the echo model answers each page's byte size)."""
    server = server_factory(ECHO, env={**ENV, "VENVSERVE_PDF_DPI": "100"})
    docs = []
    for k in range(20):
        data = pages_pdf([f"doc {k} page {p} " + "x" * (3 * p + k % 3) for p in range(1, 4)])
        sizes = expected_sizes(data, 100)
        docs.append((data, sizes))
    assert all(len(set(sizes)) == 3 for _, sizes in docs), "pages of a document must differ in size"
    pid = server.pid
    with ThreadPoolExecutor(20) as pool:
        for _ in range(10):
            answers = list(pool.map(lambda d: ocr(server, d[0], "doc.pdf"), docs))
            for (_, sizes), r in zip(docs, answers):
                assert r.status_code == 200, r.text
                assert [p["text"] for p in r.json()["pages"]] == sizes
                assert [p["page"] for p in r.json()["pages"]] == [1, 2, 3]
    assert server.proc.poll() is None and server.pid == pid
