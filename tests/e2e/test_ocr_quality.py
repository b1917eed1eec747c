"""Page-sized documents through the gateway: the numbers and the reading order that used to
come back wrong (the real-document benchmark is bench/quality; docs/ocr-quality.md).

Pages are rendered here at print sizes: 200 dpi, 10-11 pt type. The text is prose from
the groff pdfmark manual, so the lines look like a real page's and not like test labels.
"""

import io
import shutil
from pathlib import Path

import pytest

from support import FONT, cer, image_bytes

DPI = 200
BODY_PX = 30  # 10.8 pt at 200 dpi

PROSE = [
    "It might appear that it is a fairly simple matter to produce documents in",
    "Portable Document Format, commonly known as PDF, using GNU Troff as the",
    "document formatter. Indeed, the default output format of groff is the native",
    "PostScript format, which PDF producers such as Acrobat Distiller or Ghostscript",
    "expect as their input format. Thus, the PDF production process would seem to",
    "entail simply formatting the document source with groff, to produce a version",
    "of the document which can subsequently be processed to generate the final PDF.",
    "For many PDF production requirements, the production cycle described above",
    "may be sufficient. However, this is a limited PDF production method, in which",
    "the resultant document represents no more than an on screen image of the page.",
]
LEFT = [
    "The Portable Document Format provides",
    "a number of features which enhance the",
    "experience of reading a document on the",
    "screen, but which are of little value to",
    "a document which is merely printed. It",
    "is possible to exploit these features,",
]
RIGHT = [
    "The markup techniques to be described",
    "have been utilised in the production of",
    "the PDF version of this document itself.",
    "This has been formatted using the ms",
    "macro package; thus, usage examples may",
    "be found in the document source file.",
]


def font(px: int):
    from PIL import ImageFont

    return ImageFont.truetype(FONT, px)


def page(width_in: float = 8.5, height_in: float = 5.5):
    from PIL import Image, ImageDraw

    image = Image.new("L", (int(width_in * DPI), int(height_in * DPI)), 255)
    return image, ImageDraw.Draw(image)


HEADING = "1. Introduction Draft 2, page 3"
NOTE, NOTE_LINE = "[12]", 4  # a margin note at the far end of a body line


def tilted_page():
    """A heading whose two ends stand far apart on one line, then prose with a note in the
    right margin, turned 1.5°."""
    from PIL import Image

    image, draw = page(height_in=4)
    draw.text((DPI // 2, DPI // 2), "1. Introduction", fill=0, font=font(44))
    draw.text((int(6.6 * DPI), DPI // 2 + 12), "Draft 2, page 3", fill=0, font=font(BODY_PX))
    for i, line in enumerate(PROSE):
        draw.text((DPI // 2, DPI // 2 + 90 + i * BODY_PX * 1.3), line, fill=0, font=font(BODY_PX))
    draw.text((int(7.7 * DPI), DPI // 2 + 90 + NOTE_LINE * BODY_PX * 1.3), NOTE, fill=0, font=font(BODY_PX))
    return image.rotate(1.5, resample=Image.BICUBIC, expand=True, fillcolor=255), draw


def ocr(server, data: bytes, filename: str, model: str) -> str:
    r = server.client.post("/v1/ocr", data={"model": model},
                           files={"file": (filename, data, "application/octet-stream")})
    assert r.status_code == 200, r.text
    return r.json()["text"]


def positions(expected: list[str], text: str, max_cer: float = 0.12) -> list[int]:
    """For each expected line, the index of the answer's line that reads it."""
    got = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    found = []
    for line in expected:
        rates = [cer(line, g) for g in got]
        best = min(range(len(got)), key=rates.__getitem__)
        assert rates[best] <= max_cer, f"{line!r} not read (closest {got[best]!r}):\n{text}"
        found.append(best)
    return found


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs the tesseract binary")
def test_tesseract_reads_the_numbers_of_a_200_dpi_table_pdf(ocr_server):
    """A 10 pt table in a PDF, rendered by the gateway at 200 dpi: tesseract once read
    1.0 as 0, 1.3 as 3, 1.7 as 7, 14 as 4 and "list" as "ist" on such a page, guessing
    238 dpi for a re-encoded copy."""
    rows = [["Item", "Ratio", "Count", "Note"], ["alpha", "1.0", "14", "list"], ["beta", "1.3", "27", "follow"],
            ["gamma", "1.7", "140", "0.25"], ["delta", "2.5", "3.5", "11"]]
    image, draw = page(height_in=2.5)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            draw.text((DPI + c * 0.7 * DPI, DPI // 2 + r * 1.5 * 28), cell, fill=0, font=font(28))
    text = ocr(ocr_server, image_bytes(image, "PDF", resolution=DPI), "table.pdf", "tesseract")
    # Every cell, each exactly once, row by row: tesseract's page segmentation takes the
    # table's columns as blocks of their own, and its block order read them column by column.
    assert text.splitlines() == [" ".join(row) for row in rows], text


@pytest.mark.parametrize("model", ["rapidocr", "tesseract"])
def test_a_page_tilted_by_1_5_degrees_comes_back_in_line_order(ocr_server, model):
    """A heading and ten body lines, the page turned 1.5°: across the page the lines drift
    by about a line's height, so grouping fragments by their upright boxes put the far end
    of the heading on a line of its own (and, on real pages, read lines in reverse)."""
    image, draw = tilted_page()
    text = ocr(ocr_server, image_bytes(image, "PNG", dpi=(DPI, DPI)), "tilted.png", model)
    lines = [HEADING] + PROSE[:NOTE_LINE] + [PROSE[NOTE_LINE] + " " + NOTE] + PROSE[NOTE_LINE + 1:]
    found = positions(lines, text)
    assert found == sorted(found) and len(set(found)) == len(found), (found, text)
    assert cer(" ".join(lines), " ".join(text.split())) <= 0.03, text


@pytest.mark.parametrize("model", ["rapidocr", "tesseract"])
def test_a_two_column_page_comes_back_column_by_column(ocr_server, model):
    """A full-width title over two columns: the title, then the left column, then the right
    (a box engine's own order reads across the gutter, row by row)."""
    image, draw = page(height_in=3.5)
    title = "Producing PDF Documents with GNU Troff"
    draw.text((DPI // 2, DPI // 3), title, fill=0, font=font(44))
    for i, (left, right) in enumerate(zip(LEFT, RIGHT)):
        y = DPI // 3 + 100 + i * BODY_PX * 1.3
        draw.text((DPI // 2, y), left, fill=0, font=font(BODY_PX))
        draw.text((DPI // 2 + 3.9 * DPI, y), right, fill=0, font=font(BODY_PX))
    text = ocr(ocr_server, image_bytes(image, "PNG", dpi=(DPI, DPI)), "columns.png", model)
    found = positions([title] + LEFT + RIGHT, text)
    assert found == sorted(found) and len(set(found)) == len(found), (found, text)


# Crops of real typeset pages (bench/quality/fixtures.py made them from Debian packages).
PAGES = Path(__file__).parent / "pages"
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": "-", "\u2013": "-"})


def real_page(name: str) -> tuple[bytes, str]:
    return (PAGES / (name + ".png")).read_bytes(), (PAGES / (name + ".txt")).read_text()


def words(text: str) -> str:
    """One space between words, typographic quotes and dashes made plain."""
    return " ".join(text.translate(_QUOTES).split())


@pytest.mark.parametrize("model", ["rapidocr", "tesseract"])
def test_the_ascii_7_code_table_is_read_row_by_row(ocr_server, model):
    """ascii(7) as groff typesets it: the running head in three pieces is one line on top
    (tesseract's block order put its middle after the body), each table row is one line in
    order, and the octal codes 100-117 keep their leading 1 (once read as 00-17)."""
    png, truth = real_page("ascii-table")
    text = ocr(ocr_server, png, "ascii-table.png", model)
    lines = [words(line) for line in text.splitlines() if line.strip()]
    assert cer("ascii(7) Miscellaneous Information Manual ascii(7)", lines[0]) <= 0.05, text
    rows = [words(line) for line in truth.splitlines() if line.split()[:1] and len(line.split()[0]) == 3
            and line.split()[0].startswith("0") and line.split()[0].isdigit()]
    assert len(rows) == 16
    found = positions(rows, text, max_cer=0.2)
    assert found == sorted(found) and len(set(found)) == len(found), (found, text)
    for n, row in enumerate(found):
        assert "%o" % (0o100 + n) in lines[row].split(), (n, lines[row])
    assert cer(words(truth), words(text)) <= 0.03, text


def test_the_ascii_7_code_table_is_a_markdown_table_from_rapidocr(ocr_server):
    """Markdown of the same crop: the code table is one GitHub table under the page's own
    header, its 16 rows in order with each code in its column."""
    png, _ = real_page("ascii-table")
    r = ocr_server.client.post("/v1/ocr", data={"model": "rapidocr", "format": "markdown"},
                               files={"file": ("ascii-table.png", png, "image/png")})
    assert r.status_code == 200, r.text
    md = r.json()["text"]
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table[:2] == ["| Oct | Dec | Hex | Char | Oct | Dec | Hex | Char |", "|---" * 8 + "|"], md
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert [(row[0], row[4]) for row in rows] == [("%03o" % n, "%o" % (0o100 + n)) for n in range(16)], md
    assert all(len(row) == 8 for row in rows), md
    assert "| 012 | 10 | 0A | LF '\\n' (new line) | 112 | 74 | 4A | J |" in table, md
    assert md.split("\n\n")[0] == "ascii(7) Miscellaneous Information Manual ascii(7)", md


@pytest.mark.parametrize("model", ["rapidocr", "tesseract"])
@pytest.mark.parametrize("degrees", [0.0, 1.5])
def test_a_real_two_column_paper_is_read_column_by_column(ocr_server, model, degrees):
    """The top of a page of groff's mom sample paper, upright and turned 1.5 degrees: the
    running head, then the left column, then the right one."""
    from PIL import Image

    png, truth = real_page("paper-columns")
    if degrees:
        image = Image.open(io.BytesIO(png)).rotate(degrees, resample=Image.BICUBIC, expand=True, fillcolor=255)
        png = image_bytes(image, "PNG", dpi=(DPI, DPI))
    text = ocr(ocr_server, png, "paper.png", model)
    # The head, the first and last lines of the left column, then those of the right one.
    marks = ["CONTROL EQUALS CHAOS Chang, Connors", "eos et accusam. Et justo duo dolores et rebum.",
             "elitr sed diam nonumy eirmod tempor invidunt. Ut labore",
             "aliquyam erat, sed diam voluptua. At vero eos et accusam",
             "gren no sea takimata sanctus est. Lorem ipsum dolor sit"]
    found = positions(marks, text, max_cer=0.1)
    assert found == sorted(found) and len(set(found)) == len(found), (found, text)
    assert cer(words(truth), words(text)) <= 0.03, text
