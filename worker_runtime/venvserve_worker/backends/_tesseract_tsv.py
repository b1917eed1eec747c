"""Tesseract's TSV output as a page's lines, in the order a person reads them.

Tesseract's own order is block by block, and its page segmentation makes a
block of each piece of a running head or footer ("ascii(7)", "Miscellaneous
Information Manual", "ascii(7)") and of a table's cells now and then: read
block by block, a header's middle comes out after the body and a row's cells
apart. Its lines go through the box engines' reading order instead (deskew,
columns, rows), as quads tilted like their words, so that a tilted page keeps
its lines apart; tesseract's paragraph numbers and word heights stay on each
line as hints for markdown.

Its page segmentation (psm 3) also breaks some tables: a column of single
characters is taken for one vertical line of garbage ("OMAIDUOBRWNRON" for
ascii(7)'s Char column), beside columns of short cells made blocks of their
own. ``table_regions`` finds such places, for the backend to read again as
one uniform block (psm 6), row by row, and ``replace`` puts those lines in.

Stdlib only.
"""

from statistics import median
from typing import Dict, List, NamedTuple, Optional, Tuple

from ._layout import TextLine
from ._reading_order import MIN_COLUMN_LINE, Fragment, reading_order

Word = Tuple[int, int, int, int, str]  # left, top, right, bottom, text
Rect = Tuple[int, int, int, int]  # left, top, right, bottom

MAX_LINE_SLOPE_GAP = 0.02  # a line whose own slope is this far from the page's takes the page's
MIN_CELL_LINES = 3  # a block of this many lines, narrower than a line of text, is a column of cells
VERTICAL = 2.0  # a "line" this many times taller than wide is a column of characters read downwards
MIN_VERTICAL_CHARS = 3
MAX_REGIONS = 4


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
    return in_reading_order(parse(tsv))


def in_reading_order(lines: List[TsvLine]) -> List[TextLine]:
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


def table_regions(lines: List[TsvLine]) -> List[Rect]:
    """Rectangles where the page segmentation broke a table: vertical lines of garbage side by
    side with each other or with columns of short cells (blocks of their own), grown to the
    whole lines they touch. Columns of cells alone are read well as they are: the reading
    order puts their rows together, and a second reading costs time and misreads some."""
    if not lines:
        return []
    unit = median(line.size for line in lines)
    blocks: Dict[int, List[TsvLine]] = {}
    for line in lines:
        blocks.setdefault(line.block, []).append(line)
    pieces: List[Rect] = []
    vertical = set()
    for members in blocks.values():
        box = _union(line.box for line in members)
        if len(members) >= MIN_CELL_LINES and box[2] - box[0] < MIN_COLUMN_LINE * unit:
            pieces.append(box)
    for line in lines:
        x0, top, x1, bottom = line.box
        if bottom - top > VERTICAL * max(x1 - x0, 1) and sum(c.isalnum() for c in line.text) >= MIN_VERTICAL_CHARS:
            pieces.append(line.box)
            vertical.add(line.box)
    regions = []
    for group in _side_by_side(pieces):
        if not vertical.intersection(group):
            continue
        region = _union(group)
        while True:  # a line the rectangle cuts is read again whole
            grown = _union([region] + [line.box for line in lines if _overlaps(line.box, region)])
            if grown == region:
                break
            region = grown
        regions.append(region)
    # Each region costs a tesseract call: a page that looks broken everywhere is read once more
    # at most MAX_REGIONS times, the largest regions first.
    merged = _merge(regions)
    largest = sorted(merged, key=lambda r: (r[2] - r[0]) * (r[3] - r[1]), reverse=True)[:MAX_REGIONS]
    return [r for r in merged if r in largest]


def replace(lines: List[TsvLine], regions: List[Rect], rereads: List[List[TsvLine]]) -> List[TsvLine]:
    """The page's lines with those inside each region replaced by that region's second reading
    (in the page's frame, see ``shift``), given blocks of their own."""
    kept = [line for line in lines if not any(_inside(line.box, region) for region in regions)]
    for n, again in enumerate(rereads, 1):
        for line in again:
            block = -(n * 10000 + line.block)
            kept.append(line._replace(block=block, para=block * 10000 - line.para % 10000))
    return kept


def shift(lines: List[TsvLine], dx: int, dy: int) -> List[TsvLine]:
    """Lines read on a crop, moved to the page's frame."""
    return [line._replace(box=(line.box[0] + dx, line.box[1] + dy, line.box[2] + dx, line.box[3] + dy),
                          words=tuple((w[0] + dx, w[1] + dy, w[2] + dx, w[3] + dy, w[4]) for w in line.words))
            for line in lines]


def _union(boxes) -> Rect:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(box: Rect, region: Rect) -> bool:
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def _side_by_side(pieces: List[Rect]) -> List[List[Rect]]:
    """Groups of pieces linked by running side by side (overlapping in height, apart in width);
    only groups of two or more."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pieces = sorted(pieces, key=lambda r: r[1])
    for i, a in enumerate(pieces):
        for j in range(i + 1, len(pieces)):
            b = pieces[j]
            if b[1] >= a[3]:
                break  # this piece and all after it start below ``a``: none overlaps it in height
            height = min(a[3] - a[1], b[3] - b[1])
            if min(a[3], b[3]) - max(a[1], b[1]) >= 0.5 * height and (a[2] <= b[0] or b[2] <= a[0]):
                parent[root(i)] = root(j)
    groups: Dict[int, List[Rect]] = {}
    for i, piece in enumerate(pieces):
        groups.setdefault(root(i), []).append(piece)
    return [group for group in groups.values() if len(group) >= 2]


def _merge(regions: List[Rect]) -> List[Rect]:
    """Overlapping rectangles as one, top to bottom."""
    out: List[Rect] = []
    for region in sorted(regions, key=lambda r: r[1]):
        for n, other in enumerate(out):
            if _overlaps(region, other):
                out[n] = _union([region, other])
                break
        else:
            out.append(region)
    return out if len(out) == len(regions) or len(out) <= 1 else _merge(out)
