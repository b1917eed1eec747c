"""Tesseract's TSV output as a page's lines, in the order a person reads them.

Tesseract's own order is block by block, and its page segmentation makes a
block of each piece of a running head or footer ("ascii(7)", "Miscellaneous
Information Manual", "ascii(7)") and of a table's cells now and then: read
block by block, a header's middle comes out after the body and a row's cells
apart. Its lines go through the box engines' reading order instead (deskew,
columns, rows), as quads tilted like their words, so that a tilted page keeps
its lines apart; tesseract's paragraph numbers and word heights stay on each
line as hints for markdown.

Stdlib only.
"""

from statistics import median
from typing import Dict, List, NamedTuple, Optional, Tuple

from ._layout import TextLine
from ._reading_order import Fragment, reading_order

Word = Tuple[int, int, int, int, str]  # left, top, right, bottom, text

MAX_LINE_SLOPE_GAP = 0.02  # a line whose own slope is this far from the page's takes the page's


class TsvLine(NamedTuple):
    """One level-4 row of the TSV with its words, in tesseract's order."""

    box: Tuple[int, int, int, int]
    words: Tuple[Word, ...]
    block: int
    para: int

    @property
    def text(self) -> str:
        return " ".join(w[4] for w in self.words)

    @property
    def size(self) -> float:
        # The words' median height is the type size; a superscript only makes the line box taller.
        return float(median(w[3] - w[1] for w in self.words))


def parse(tsv: str) -> List[TsvLine]:
    """Lines that hold at least one word; malformed rows are skipped."""
    boxes: Dict[tuple, Tuple[int, int, int, int]] = {}
    words: Dict[tuple, List[Word]] = {}
    order: List[tuple] = []
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or not cells[0].isdigit():
            continue
        try:
            key = tuple(int(c) for c in cells[1:5])  # page, block, paragraph, line
            left, top, width, height = (int(c) for c in cells[6:10])
        except ValueError:
            continue
        if cells[0] == "4":
            boxes[key] = (left, top, left + width, top + height)
            words[key] = []
            order.append(key)
        elif cells[0] == "5" and key in words and cells[11].strip():
            words[key].append((left, top, left + width, top + height, cells[11].strip()))
    out = []
    for key in order:
        if words[key]:
            block = key[0] * 10000 + key[1]
            out.append(TsvLine(boxes[key], tuple(words[key]), block, block * 10000 + key[2]))
    return out


def tsv_lines(tsv: str) -> List[TextLine]:
    """Tesseract's lines in its own order, its blocks and paragraphs kept."""
    return [TextLine(line.text, line.box[0], line.box[2], line.box[1], line.box[3], block=line.block,
                     para=line.para, size=line.size) for line in parse(tsv)]


def page_lines(tsv: str) -> List[TextLine]:
    """Tesseract's lines in reading order: pieces of one row across blocks become one line."""
    lines = parse(tsv)
    if not lines:
        return []
    fragments = line_quads(lines)
    out = []
    for row in reading_order(fragments):
        parts = [lines[int(box.text)] for box in row.boxes]
        out.append(TextLine(" ".join(part.text for part in parts), row.x0, row.x1, row.top, row.bottom,
                            block=row.block, para=parts[0].para, size=median(part.size for part in parts)))
    return out


def line_quads(lines: List[TsvLine]) -> List[Fragment]:
    """Each line as a quad along its words' centres, at its words' height; a fragment's text is
    the line's index. Tesseract's boxes are upright: on a tilted page a long line's box is a
    whole line taller than its text, and would merge with its neighbours."""
    fits = [_fit(line.words) for line in lines]
    slopes = [slope for _, _, slope in fits if slope is not None]
    page = median(slopes) if slopes else 0.0
    out = []
    for n, (line, (cx, cy, slope)) in enumerate(zip(lines, fits)):
        if slope is None or abs(slope - page) > MAX_LINE_SLOPE_GAP:
            slope = page
        x0, x1 = min(w[0] for w in line.words), max(w[2] for w in line.words)
        # An upright word box is its text's height plus its width times the slope.
        height = max(line.size - abs(slope) * median(w[2] - w[0] for w in line.words), 1.0)
        y0, y1 = cy + slope * (x0 - cx), cy + slope * (x1 - cx)
        half = height / 2.0
        out.append(Fragment(((x0, y0 - half), (x1, y1 - half), (x1, y1 + half), (x0, y0 + half)), str(n)))
    return out


def _fit(words: Tuple[Word, ...]) -> Tuple[float, float, Optional[float]]:
    """(centre x, centre y, slope) of a line's word centres by least squares; the slope is None
    when fewer than three words leave it to chance."""
    xs = [(w[0] + w[2]) / 2.0 for w in words]
    ys = [(w[1] + w[3]) / 2.0 for w in words]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if len(words) < 3 or sxx <= 0:
        return mx, my, None
    return mx, my, sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
