"""The tesseract backend hands tesseract the spooled file itself, with the right resolution.

A stand-in ``tesseract`` records its arguments and environment and answers a
fixed TSV, so these tests need neither the binary nor its language data.
"""

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from venvserve_worker.backends.base import BackendError, OptionError
from venvserve_worker.backends._tesseract_tsv import tsv_lines
from venvserve_worker.backends.tesseract import TesseractBackend

PIL = pytest.importorskip("PIL.Image")

TSV = ("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
       "4\t1\t1\t1\t1\t0\t10\t10\t300\t20\t-1\t\n"
       "5\t1\t1\t1\t1\t1\t10\t10\t100\t20\t96\tTotal\n"
       "5\t1\t1\t1\t1\t2\t120\t10\t40\t20\t96\t1.0\n"
       "4\t1\t1\t1\t2\t0\t10\t40\t200\t20\t-1\t\n"
       "5\t1\t1\t1\t2\t1\t10\t40\t200\t20\t95\tcontinued.\n")

FAKE = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("tesseract 5.3.0")
elif args == ["--list-langs"]:
    print('List of available languages in "/usr/share/tessdata/" (2):')
    print("eng")
    print("osd")
else:
    with open({log!r}, "a") as f:
        f.write(json.dumps({{"args": args, "omp": os.environ.get("OMP_THREAD_LIMIT")}}) + "\\n")
    sys.stdout.write({tsv!r})
"""


@pytest.fixture
def backend(tmp_path):
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "tesseract"
    fake.write_text(FAKE.format(python=sys.executable, log=str(log), tsv=TSV))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    b = TesseractBackend()
    b.load({"tesseract_cmd": str(fake)})

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return b, calls


def image(path: Path, fmt: str = "PNG", mode: str = "RGB", **save) -> str:
    PIL.new(mode, (60, 40), "white").save(path, format=fmt, **save)
    return str(path)


def test_the_file_goes_to_tesseract_as_it_is_with_its_stored_resolution(backend, tmp_path):
    b, calls = backend
    path = image(tmp_path / "scan.png", dpi=(200, 200))
    answer = b.infer({"task": "ocr", "images": [path], "dpi": 150})
    assert answer == {"pages": [{"page": 1, "text": "Total 1.0\ncontinued."}]}
    (call,) = calls()
    assert call["args"][:2] == [path, "stdout"]  # the original file, no temporary copy
    assert call["args"][call["args"].index("--dpi") + 1] == "200"  # the file's own resolution wins
    assert call["omp"] == "1" and call["args"][-1] == "tsv"


def test_without_a_stored_resolution_the_request_dpi_then_the_default_is_used(backend, tmp_path):
    b, calls = backend
    path = image(tmp_path / "page.png")
    b.infer({"task": "ocr", "images": [path], "dpi": 150})
    b.infer({"task": "ocr", "images": [path]})
    dpis = [c["args"][c["args"].index("--dpi") + 1] for c in calls()]
    assert dpis == ["150", "300"]


def test_a_file_tesseract_would_see_differently_is_made_upright_and_opaque_first(backend, tmp_path):
    b, calls = backend
    rgba = image(tmp_path / "alpha.png", mode="RGBA")
    exif = PIL.Exif()
    exif[0x0112] = 6  # rotated 90°
    rotated = image(tmp_path / "rotated.jpg", fmt="JPEG", exif=exif.tobytes(), dpi=(240, 240))
    b.infer({"task": "ocr", "images": [rgba, rotated]})
    first, second = calls()
    assert first["args"][0] != rgba and first["args"][0].endswith(".png")
    assert second["args"][0] != rotated and second["args"][second["args"].index("--dpi") + 1] == "240"
    assert not os.path.exists(first["args"][0])  # the copies are gone after the request


def test_even_light_is_binarised_with_otsu_and_uneven_light_with_sauvola(backend, tmp_path):
    """A rendered page or a flatbed scan has even light: one global threshold reads it best. A
    photo's dim corner defeats it: local (Sauvola) thresholds read there."""
    b, calls = backend
    even = image(tmp_path / "page.png")
    photo = PIL.linear_gradient("L").resize((400, 300)).point(lambda v: 255 - v // 2)  # 255 -> 128
    photo.save(tmp_path / "photo.png")
    b.infer({"task": "ocr", "images": [even], "dpi": 200})
    b.infer({"task": "ocr", "images": [str(tmp_path / "photo.png")]})
    b.infer({"task": "ocr", "images": [even], "options": {"thresholding": "adaptive-otsu"}})
    methods = [c["args"][c["args"].index("-c") + 1] for c in calls()]
    assert methods == ["thresholding_method=0", "thresholding_method=2", "thresholding_method=1"]


def test_markdown_joins_the_lines_of_a_paragraph(backend, tmp_path):
    b, _ = backend
    answer = b.infer({"task": "ocr", "images": [image(tmp_path / "p.png")], "format": "markdown"})
    assert answer["pages"][0]["text"] == "Total 1.0 continued."


@pytest.mark.parametrize("request_", [{"dpi": 5}, {"dpi": "300"}, {"options": {"psm": 99}},
                                      {"options": {"lang": "xx"}}, {"options": {"lang": "../etc"}},
                                      {"options": {"thresholding": "magic"}}, {"options": {"thresholding": []}}])
def test_bad_request_settings_are_400s(backend, tmp_path, request_):
    b, calls = backend
    with pytest.raises(BackendError) as info:
        b.infer({"task": "ocr", "images": [image(tmp_path / "p.png")], **request_})
    assert info.value.status == 400 and calls() == []


def test_a_corrupt_file_is_the_clients_error_and_never_reaches_tesseract(backend, tmp_path):
    b, calls = backend
    path = tmp_path / "cut.png"
    image(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(BackendError) as info:
        b.infer({"task": "ocr", "images": [str(path)]})
    assert (info.value.status, info.value.code) == (400, "invalid_image") and calls() == []


@pytest.mark.parametrize("options, named", [({"lang": "xx"}, "lang"), ({"psm": 14}, "psm"),
                                            ({"dpi": 20}, "dpi"), ({"omp_thread_limit": 0}, "omp_thread_limit"),
                                            ({"timeout_s": "soon"}, "timeout_s"), ({"thresholding": 2}, "thresholding")])
def test_bad_catalog_options_fail_the_load_naming_the_option(backend, options, named):
    b, _ = backend
    with pytest.raises(OptionError) as info:
        TesseractBackend().load({"tesseract_cmd": b._cmd, **options})
    assert repr(named) in str(info.value)


def test_tsv_lines_keep_tesseracts_order_and_paragraphs():
    lines = tsv_lines(TSV)
    assert [line.text for line in lines] == ["Total 1.0", "continued."]
    assert lines[0].para == lines[1].para and (lines[0].top, lines[0].bottom) == (10, 30)
