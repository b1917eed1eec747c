"""Crops of the corpus's real pages for the test suite, with their ground truth.

The suite cannot fetch the packages the corpus comes from, so two small crops
are committed under ``tests/e2e/pages/`` (PNG, 200 dpi, grayscale), made by
this script from a built corpus (16 grey levels, to keep them small):

- ``ascii-table``: the top of ``ascii(7)`` (man-pages 6.03, typeset with
  groff): its three-part running head, then the first sixteen rows of the code
  table, the page where tesseract once dropped the leading 1 of 100-117 and
  its block order read the head's middle after the body;
- ``paper-columns``: the top of page 11 of groff's mom sample paper: a
  running head over two columns of prose.

Each ``NAME.txt`` is the crop's own text layer (``pdftotext -layout``), region
by region in reading order.

    python -m bench.quality build && python -m bench.quality fixtures
"""

import io
from pathlib import Path

from .corpus import ROOT, run, text_layer

OUT = ROOT / "tests" / "e2e" / "pages"
DPI = 200
# name: (corpus page, crop (x, y, w, h) in points, text regions in reading order, in points)
CROPS = {
    "ascii-table": ("ascii-p1", (0, 30, 595, 365), [(0, 30, 595, 365)]),
    "paper-columns": ("paper-p11", (0, 0, 612, 330),
                      [(0, 0, 612, 70), (0, 70, 297, 260), (297, 70, 315, 260)]),
}


def crop_png(pdf: Path, box) -> bytes:
    from PIL import Image

    x, y, w, h = (int(round(v * DPI / 72)) for v in box)
    png = run(["pdftoppm", "-r", str(DPI), "-gray", "-png", "-singlefile", "-x", str(x), "-y", str(y),
               "-W", str(w), "-H", str(h), str(pdf)]).stdout
    # Sixteen grey levels keep the type's anti-aliased edges at a quarter of the bytes.
    image = Image.open(io.BytesIO(png)).convert("L").point(lambda v: v // 16 * 17)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, dpi=(DPI, DPI))
    return out.getvalue()


def fixtures(pages, out: Path = OUT) -> Path:
    by_name = {page["name"]: page for page in pages}
    out.mkdir(parents=True, exist_ok=True)
    for name, (source, box, regions) in CROPS.items():
        pdf = Path(by_name[source]["path"])
        (out / (name + ".png")).write_bytes(crop_png(pdf, box))
        (out / (name + ".txt")).write_text(text_layer(pdf, 1, regions))
        print(name, (out / (name + ".png")).stat().st_size, "bytes")
    return out
