"""Reading order for the box engines (rapidocr, rapidocr-v4, paddle).

A detector gives quadrilaterals around text fragments in no useful order.
Three steps turn them into lines in the order a person reads them:

1. Deskew: the page's angle is the width-weighted median of the fragments'
   baseline angles; every fragment is rotated back by it, and measured by its
   own quad (height between its top and bottom edges), not by an upright box
   around it, which a 1.5° tilt makes a line-width's sin taller.
2. Columns: a vertical gutter that no fragment crosses except full-width
   ones (titles, headings, footers), with substantial text on both sides
   side by side, splits the page; spanning lines cut it into bands, and each
   band is read left column, then right column (recursively, for three
   columns), with the spanning lines in place between the bands.
3. Lines: inside a column, fragments whose deskewed vertical extents overlap
   by half the smaller height (and that do not overlap side by side) form a
   line, read left to right; lines go top to bottom.

Stdlib only. Every function takes plain tuples, so tests feed synthetic boxes.
"""

import math
from statistics import median
from typing import List, NamedTuple, Optional, Sequence, Tuple

Point = Tuple[float, float]


class Fragment(NamedTuple):
    """One recognised piece of text and its quad: top-left, top-right, bottom-right, bottom-left."""

    quad: Tuple[Point, Point, Point, Point]
    text: str


class Box(NamedTuple):
    """A fragment in the deskewed frame."""

    x0: float
    top: float
    x1: float
    bottom: float
    text: str

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def cy(self) -> float:
        return (self.top + self.bottom) / 2.0


class Line(NamedTuple):
    """Boxes of one line, left to right, and the column segment (block) it belongs to."""

    boxes: Tuple[Box, ...]
    block: int

    @property
    def text(self) -> str:
        return " ".join(b.text.strip() for b in self.boxes)

    @property
    def x0(self) -> float:
        return min(b.x0 for b in self.boxes)

    @property
    def x1(self) -> float:
        return max(b.x1 for b in self.boxes)

    @property
    def top(self) -> float:
        return median(b.top for b in self.boxes)

    @property
    def bottom(self) -> float:
        return median(b.bottom for b in self.boxes)

    @property
    def height(self) -> float:
        return max(b.height for b in self.boxes)


SAME_LINE = 0.5  # vertical overlap, as a fraction of the smaller height, that makes one line
SIDE_BY_SIDE = 0.3  # horizontal overlap (of the narrower box) beyond which two boxes are not one line
MAX_SKEW_DEG = 20.0  # beyond this, the page is rotated, not skewed: leave it to the engine's classifier
MIN_GUTTER = 0.8  # a gutter is at least this many text heights wide (a 1280 px detector's boxes run tall)
MIN_SIDE = 0.2  # each column covers at least this fraction of the page width
MIN_SIDE_BY_SIDE = 0.3  # the columns run side by side over at least this fraction of the text height
MAX_DEPTH = 3
MARGIN_GAP = 2.0  # a first or last row this far from the rest is a running header or footer
NARROW = 3.0  # boxes narrower than this many text heights do not define a gutter
# A column of text has lines at least this many text heights long (~16 characters) on one side
# at least; short cells on both sides of a gap are a table's columns (or a list's), read by rows.
MIN_COLUMN_LINE = 8.0
MIN_REACH = 0.25  # a line crossing the gutter spans the columns when it covers this much of each


def fragment(points: Sequence[Sequence[float]], text: str) -> Fragment:
    """A detector's quad [[x, y] * 4] (clockwise from top-left) as a Fragment."""
    p = [(float(q[0]), float(q[1])) for q in points]
    if len(p) != 4:  # some detectors give polygons: use their upright box
        xs, ys = [q[0] for q in p], [q[1] for q in p]
        p = [(min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys))]
    return Fragment((p[0], p[1], p[2], p[3]), text)


def rectangle(x0: float, y0: float, x1: float, y1: float, text: str) -> Fragment:
    return Fragment(((x0, y0), (x1, y0), (x1, y1), (x0, y1)), text)


def _dist(a: Point, b: Point) -> float:
    return math.hypot(b[0] - a[0], b[1] - a[1])


def page_angle(fragments: Sequence[Fragment]) -> float:
    """The page's tilt in radians: width-weighted median angle of the long fragments' edges."""
    samples = []
    for f in fragments:
        tl, tr, br, bl = f.quad
        width = (_dist(tl, tr) + _dist(bl, br)) / 2.0
        height = (_dist(tl, bl) + _dist(tr, br)) / 2.0
        if width < 2.0 * max(height, 1.0):
            continue  # short fragments have noisy angles
        angle = (math.atan2(tr[1] - tl[1], tr[0] - tl[0]) + math.atan2(br[1] - bl[1], br[0] - bl[0])) / 2.0
        if abs(math.degrees(angle)) <= MAX_SKEW_DEG:
            samples.append((angle, width))
    if not samples:
        return 0.0
    samples.sort()
    half, acc = sum(w for _, w in samples) / 2.0, 0.0
    for angle, weight in samples:
        acc += weight
        if acc >= half:
            return angle
    return samples[-1][0]


def deskew(fragments: Sequence[Fragment], angle: float) -> List[Box]:
    cos, sin = math.cos(-angle), math.sin(-angle)
    boxes = []
    for f in fragments:
        if not f.text or not f.text.strip():
            continue
        tl, tr, br, bl = f.quad
        cx = sum(p[0] for p in f.quad) / 4.0
        cy = sum(p[1] for p in f.quad) / 4.0
        rx, ry = cx * cos - cy * sin, cx * sin + cy * cos
        w = max((_dist(tl, tr) + _dist(bl, br)) / 2.0, 1.0)
        h = max((_dist(tl, bl) + _dist(tr, br)) / 2.0, 1.0)
        boxes.append(Box(rx - w / 2.0, ry - h / 2.0, rx + w / 2.0, ry + h / 2.0, f.text))
    return boxes


def group_lines(boxes: Sequence[Box]) -> List[List[Box]]:
    """Boxes of one column into lines, top to bottom, each left to right."""
    lines: List[List[Box]] = []
    for box in sorted(boxes, key=lambda b: (b.cy, b.x0)):
        best, best_d = None, None
        for line in lines[-4:]:  # sorted by centre: only recent lines can match
            top = median(b.top for b in line)
            bottom = median(b.bottom for b in line)
            overlap = min(bottom, box.bottom) - max(top, box.top)
            if overlap < SAME_LINE * min(bottom - top, box.height):
                continue
            if any(_side_overlap(box, other) > SIDE_BY_SIDE for other in line):
                continue
            d = abs(box.cy - (top + bottom) / 2.0)
            if best_d is None or d < best_d:
                best, best_d = line, d
        if best is None:
            lines.append([box])
        else:
            best.append(box)
    lines.sort(key=lambda line: median(b.cy for b in line))
    return [sorted(line, key=lambda b: b.x0) for line in lines]


def _side_overlap(a: Box, b: Box) -> float:
    overlap = min(a.x1, b.x1) - max(a.x0, b.x0)
    return overlap / max(min(a.x1 - a.x0, b.x1 - b.x0), 1.0)


def find_gutter(boxes: Sequence[Box]) -> Optional[Tuple[float, float]]:
    """(x0, x1) of a column gutter, or None: the least-crossed vertical strip in the middle
    of the text, wide enough, with substantial text on both sides side by side."""
    if len(boxes) < 4:
        return None
    left_edge, right_edge = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
    width = right_edge - left_edge
    unit = median(b.height for b in boxes)
    if width < 4 * unit:
        return None
    bins = 400
    step = width / bins
    counts = [0] * bins
    for b in boxes:
        if b.x1 - b.x0 < NARROW * unit:
            continue  # a page number or a bullet must not split a gutter in two
        for i in range(max(0, int((b.x0 - left_edge) / step)), min(bins, int(math.ceil((b.x1 - left_edge) / step)))):
            counts[i] += 1
    lo, hi = int(bins * MIN_SIDE), int(bins * (1 - MIN_SIDE))
    least = min(counts[lo:hi])
    best = None
    i = lo
    while i < hi:
        if counts[i] != least:
            i += 1
            continue
        j = i
        while j < hi and counts[j] == least:
            j += 1
        if best is None or j - i > best[1] - best[0]:
            best = (i, j)
        i = j
    g0, g1 = left_edge + best[0] * step, left_edge + best[1] * step
    if g1 - g0 < MIN_GUTTER * unit:
        return None
    left, spanning, right = split(boxes, (g0, g1), unit)
    # Every line across the strip counts against it, overfull ones too: prose whose lines a
    # detector cut at different words has no gutter, only a strip most lines cross.
    crossing = sum(1 for b in boxes if _across(b, (g0, g1), unit))
    if len(left) < 2 or len(right) < 2 or len(boxes) - crossing < 2 * crossing:
        return None
    for side in (left, right):  # a column of text, not a column of page numbers
        if max(b.x1 for b in side) - min(b.x0 for b in side) < MIN_SIDE * width:
            return None
    if all(median(b.x1 - b.x0 for b in side) < MIN_COLUMN_LINE * unit for side in (left, right)):
        return None
    top, bottom = min(b.top for b in boxes), max(b.bottom for b in boxes)
    side_by_side = min(max(b.bottom for b in left), max(b.bottom for b in right)) - max(
        min(b.top for b in left), min(b.top for b in right))
    if side_by_side < max(MIN_SIDE_BY_SIDE * (bottom - top), 3 * unit):
        return None
    return g0, g1


def split(boxes: Sequence[Box], gutter: Tuple[float, float], unit: float):
    """(left, spanning, right): a box that reaches well into both columns spans them (a title),
    and so does a narrow one centred in the gutter (a page number under it). One that only
    pokes across from one column (an overfull line of code) stays in the column it starts in."""
    g0, g1 = gutter
    left_width = g0 - min(b.x0 for b in boxes)
    right_width = max(b.x1 for b in boxes) - g1
    left, spanning, right = [], [], []
    for b in boxes:
        if not _across(b, gutter, unit):
            (left if (b.x0 + b.x1) / 2.0 < (g0 + g1) / 2.0 else right).append(b)
        elif b.x1 - b.x0 < NARROW * unit or (
                g0 - b.x0 >= MIN_REACH * left_width and b.x1 - g1 >= MIN_REACH * right_width):
            spanning.append(b)
        else:
            (left if b.x0 < g0 else right).append(b)
    return left, spanning, right


def _across(b: Box, gutter: Tuple[float, float], unit: float) -> bool:
    """Does the box cross the strip: a wide one through it, or a narrow one centred in it?"""
    g0, g1 = gutter
    return b.x0 < g1 and b.x1 > g0 and (b.x1 - b.x0 >= NARROW * unit or g0 <= (b.x0 + b.x1) / 2.0 <= g1)


def margin_rows(boxes: Sequence[Box], left: set, right: set) -> set:
    """ids of the boxes in the page's first and last rows when they hold text on both sides of
    the gutter and blank space sets them apart (more than MARGIN_GAP times the usual gap
    between rows): a running header or footer, read as one line where it stands."""
    rows = group_lines(boxes)
    if len(rows) < 4:
        return set()
    tops = [min(b.top for b in row) for row in rows]
    bottoms = [max(b.bottom for b in row) for row in rows]
    gaps = [max(0.0, t - b) for b, t in zip(bottoms, tops[1:])]
    usual = max(median(gaps), 0.25 * median(b.height for b in boxes))
    found = set()
    for row, gap in ((rows[0], gaps[0]), (rows[-1], gaps[-1])):
        ids = {id(b) for b in row}
        if gap > MARGIN_GAP * usual and ids & left and ids & right:
            found |= ids
    return found


def order_boxes(boxes: Sequence[Box], depth: int = 0) -> List[List[List[Box]]]:
    """Blocks (column segments, or one spanning line) of lines, in reading order."""
    gutter = find_gutter(boxes) if depth < MAX_DEPTH else None
    if gutter is None:
        lines = group_lines(boxes)
        return [lines] if lines else []
    left, spanning, right = split(boxes, gutter, median(b.height for b in boxes))
    if depth == 0:  # a running header or footer across the columns is read where it stands
        margins = margin_rows(boxes, {id(b) for b in left}, {id(b) for b in right})
        spanning += [b for b in left + right if id(b) in margins]
        left = [b for b in left if id(b) not in margins]
        right = [b for b in right if id(b) not in margins]
    span_lines = group_lines(spanning)
    cuts = [median(b.cy for b in line) for line in span_lines]
    blocks: List[List[List[Box]]] = []
    for band in range(len(cuts) + 1):
        low = cuts[band - 1] if band else -math.inf
        high = cuts[band] if band < len(cuts) else math.inf
        for side in (left, right):
            blocks.extend(order_boxes([b for b in side if low <= b.cy < high], depth + 1))
        if band < len(cuts):
            blocks.append([span_lines[band]])
    return blocks


def reading_order(fragments: Sequence[Fragment]) -> List[Line]:
    """Lines in reading order, each tagged with its block (column segment) number."""
    boxes = deskew(fragments, page_angle(fragments))
    out: List[Line] = []
    for n, block in enumerate(order_boxes(boxes)):
        out.extend(Line(tuple(line), n) for line in block)
    return out
