"""Tables in a box engine's lines, for markdown.

A line comes with its fragments, left to right. It looks like a table row when
it has two cells or more, a cell being fragments less than MERGE_GAP box
heights apart (a detector may cut one cell in two). A run of at least MIN_ROWS
such lines, one under the other, is a table when their fragments line up: the
x-ranges that (nearly) no row's fragments cover split the run into at least two
columns, and a row's fragments in one column are its cell there (so that two
cells a detector set too close to tell apart in one row still part where the
other rows part). A row whose fragment crosses such a gutter (a cell spanning
columns) stays in the table, its text in the first column it covers, as long as
few rows do. A line of one cell between two rows is a cell's text wrapped onto
a second line: it joins the cell above in its column (or, in the first column,
is a row of its own).

A wrong table is worse than none, so a run is no table when it reads like
something else: a table of contents (dot leaders), a list (its first column
is bullets or item numbers), or text set in columns (no column of short
cells). Stdlib only; plain tuples in, strings out.
"""

import re
from statistics import median
from typing import List, Optional, Sequence, Tuple

Cell = Tuple[float, float, str]  # left, right, text: a fragment, or a cell of them
Row = Tuple[Optional[Sequence[Cell]], float, float, int]  # fragments, top, bottom, block

# Fragments of a line closer than this many box heights are one cell. A detector's box runs
# taller than the text: on ascii(7) at 200 dpi, the pieces of one cell ("NUL", "'\\0'", "(null
# character)") stand 0.2-0.4 heights apart, columns two spaces apart 0.64 and more.
MERGE_GAP = 0.5
MIN_ROWS = 3
SAME_ROW = 0.5  # lines that overlap by this fraction of the smaller height are one row
ROW_GAP = 2.0  # a blank gap between lines beyond this many text heights ends a table
MAX_ODD = 0.25  # at most this fraction of the rows may span a gutter or sit between columns
# A gutter is at least this many box heights wide: the pieces of one cell a detector cuts
# apart ("SOH" "(start of heading)") line up over many rows 0.2-0.25 heights apart; columns
# set tight (a 10 pt table at 0.7 inch pitch) leave 0.46.
MIN_GUTTER = 0.4
SHORT_CELL = 20  # a table has a column whose cells are at most this many characters (median)
MAX_LEADERS = 1  # rows with dot leaders a table may have: more is a table of contents

_LEADER = re.compile(r"(?:[.\u00b7_]\s?){4,}|\u2026\s?\u2026")
_MARKER = re.compile(r"^(?:[-*+.\u00b0\u00ab\u2022\u00b7\u25aa\u25e6\u2023\u2013\u2014\u25cf\u25a0]|"
                     r"\(?(?:\d{1,3}|[a-zA-Z])[.)])$")


def cells_of(boxes: Sequence[Cell], height: float) -> Tuple[Cell, ...]:
    """A line's fragments as cells, left to right: fragments less than MERGE_GAP heights apart join."""
    cells: List[Cell] = []
    for x0, x1, text in sorted(boxes):
        text = text.strip()
        if not text:
            continue
        if cells and x0 - cells[-1][1] < MERGE_GAP * height:
            left, right, before = cells[-1]
            cells[-1] = (left, max(right, x1), before + " " + text)
        else:
            cells.append((x0, x1, text))
    return tuple(cells)


def find_tables(lines: Sequence[Row]) -> List[Tuple[int, int, List[List[str]]]]:
    """(first, end, grid) for each run of lines[first:end] that clearly is a table."""
    groups = _visual_rows(lines)
    rows = [row for _, _, row in groups]
    found = []
    i = 0
    while i < len(rows):
        j = i + 1
        if _candidate(rows[i]):
            while j < len(rows):
                if _candidate(rows[j]) and _continues(rows[j - 1], rows[j]):
                    j += 1
                elif (j + 1 < len(rows) and rows[j][0] and _candidate(rows[j + 1])
                      and _continues(rows[j - 1], rows[j]) and _continues(rows[j], rows[j + 1])):
                    j += 2  # a wrapped cell's second line, then the next row
                else:
                    break
            found.extend(_table(rows, i, j))
        i = j
    return [(groups[first][0], groups[end - 1][1], grid) for first, end, grid in found]


def _visual_rows(lines: Sequence[Row]) -> List[Tuple[int, int, Row]]:
    """(first, end, row): consecutive lines side by side at one height are one row (a detector's
    overlapping boxes keep pieces of a row apart as lines of their own)."""
    out: List[Tuple[int, int, Row]] = []
    for n, line in enumerate(lines):
        if out and line[0] and out[-1][2][0]:
            first, _, row = out[-1]
            if min(row[2], line[2]) - max(row[1], line[1]) >= SAME_ROW * min(row[2] - row[1], line[2] - line[1]):
                out[-1] = (first, n + 1, (tuple(sorted(tuple(row[0]) + tuple(line[0]))),) + tuple(row[1:]))
                continue
        out.append((n, n + 1, line))
    return out


def markdown(grid: Sequence[Sequence[str]]) -> str:
    """A GitHub-style table: the first row is the header."""
    def row(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    lines = [row(grid[0]), "|" + "---|" * len(grid[0])]
    lines.extend(row(r) for r in grid[1:])
    return "\n".join(lines)


def _candidate(row: Row) -> bool:
    """Two cells or more."""
    return bool(row[0]) and len(cells_of(row[0], max(row[2] - row[1], 1.0))) >= 2


def _continues(above: Row, row: Row) -> bool:
    """The next line of the same run: below the last, close to it, in its block or under it."""
    unit = max(min(above[2] - above[1], row[2] - row[1]), 1.0)
    if row[1] <= above[1] + 0.5 * unit or row[1] - above[2] > ROW_GAP * unit:
        return False
    if row[3] == above[3]:
        return True
    (a0, a1), (r0, r1) = _extent(above[0]), _extent(row[0])
    return min(a1, r1) - max(a0, r0) > 0.5 * min(a1 - a0, r1 - r0)


def _extent(cells: Sequence[Cell]) -> Tuple[float, float]:
    return min(c[0] for c in cells), max(c[1] for c in cells)


def _table(rows: Sequence[Row], first: int, end: int) -> List[Tuple[int, int, List[List[str]]]]:
    """The table in rows[first:end], trimmed of odd rows at its ends, or nothing."""
    while sum(1 for r in rows[first:end] if _candidate(r)) >= MIN_ROWS:
        run = rows[first:end]
        unit = max(median(r[2] - r[1] for r in run), 1.0)
        gutters = _gutters([r[0] for r in run], unit)
        if not gutters:
            return []
        placed = [_place(r[0], gutters, _candidate(r)) for r in run]
        if placed[0] is None or not _candidate(run[0]):
            first += 1  # a line above the table (a caption, prose with a note at its end)
        elif placed[-1] is None or not _candidate(run[-1]):
            end -= 1
        else:
            if sum(p is None for p in placed) > MAX_ODD * len(run):
                return []
            grid: List[List[str]] = []
            for r in run:
                row = _grid(r[0], gutters)
                column = next((c for c, text in enumerate(row) if text), 0)
                if not _candidate(r) and column > 0 and grid and grid[-1][column]:
                    grid[-1][column] += " " + row[column]  # a wrapped cell
                else:
                    grid.append(row)
            if len(grid) > MIN_ROWS and 2 * _filled(grid[0]) < len(grid[0]) <= 2 * median(map(_filled, grid[1:])):
                first += 1  # a running head whose pieces happen to stand over the columns: no header
                continue
            return [(first, end, grid)] if _looks_like_a_table(grid) else []
    return []


def _filled(row: Sequence[str]) -> int:
    return sum(1 for cell in row if cell)


def _gutters(rows: Sequence[Sequence[Cell]], unit: float) -> List[Tuple[float, float]]:
    """x-ranges inside the run that the fragments of at most MAX_ODD of its rows cover, each
    with a clear stretch MIN_GUTTER wide: the gutter is that stretch."""
    allowed = int(MAX_ODD * len(rows))
    pieces = [(x0, x1) for cells in rows for x0, x1, _ in cells]
    events = sorted([(x0, 1) for x0, _ in pieces] + [(x1, -1) for _, x1 in pieces])
    left, right = events[0][0], events[-1][0]
    gutters: List[Tuple[float, float]] = []
    count, start = 0, None
    for x, step in events:
        count += step
        if count <= allowed and start is None:
            start = x
        elif count > allowed and start is not None:
            clear = _clear(pieces, start, x) if left < start and x < right else None
            if clear is not None and clear[1] - clear[0] >= MIN_GUTTER * unit:
                gutters.append(clear)
            start = None
    return gutters


def _clear(pieces: Sequence[Tuple[float, float]], g0: float, g1: float) -> Tuple[float, float]:
    """The widest stretch of (g0, g1) that no fragment reaches into: the few that cross it whole
    are cells spanning columns, but one that reaches in from a side narrows the gap (the
    pieces of one cell, a word apart, in many rows)."""
    best, edge = (g0, g0), g0
    for x0, x1 in sorted(p for p in pieces if p[0] < g1 and p[1] > g0 and not (p[0] <= g0 and p[1] >= g1)):
        if x0 > edge and x0 - edge > best[1] - best[0]:
            best = (edge, x0)
        edge = max(edge, x1)
    if g1 - edge > best[1] - best[0]:
        best = (edge, g1)
    return best


def _column(x0: float, x1: float, gutters: Sequence[Tuple[float, float]]) -> Tuple[int, bool]:
    """The first column the range covers, and whether it sits well in columns (spans no gutter,
    is not inside one)."""
    column = sum(1 for g0, _ in gutters if x0 >= g0)  # a cell starting in a gutter reaches right
    spans = any(x0 < g0 and x1 > g1 for g0, g1 in gutters)
    inside = any(x0 >= g0 and x1 <= g1 for g0, g1 in gutters)
    return column, not spans and not inside


def _place(cells: Sequence[Cell], gutters, row: bool) -> Optional[List[int]]:
    """Each fragment's column, or None when the line does not line up: a fragment spans a gutter
    or sits in one, or a line of two cells or more (``row``) falls in one column."""
    columns = []
    for x0, x1, _ in cells:
        column, fits = _column(x0, x1, gutters)
        if not fits:
            return None
        columns.append(column)
    return columns if len(set(columns)) >= 2 or not row else None


def _grid(cells: Sequence[Cell], gutters) -> List[str]:
    row = [""] * (len(gutters) + 1)
    for x0, x1, text in cells:
        column = _column(x0, x1, gutters)[0]
        row[column] = (row[column] + " " + text).strip()
    return row


def _looks_like_a_table(grid: Sequence[Sequence[str]]) -> bool:
    body = grid[1:]  # the header row may read like anything
    if sum(1 for row in grid if any(_LEADER.search(c) for c in row)) > MAX_LEADERS:
        return False  # a table of contents
    first = [row[0] for row in body if row[0]]
    if first and sum(1 for c in first if _MARKER.match(c)) * 2 >= len(first):
        return False  # a list: bullets or item numbers in a column of their own
    columns = [[row[c] for row in body if row[c]] for c in range(len(grid[0]))]
    if not any(column and median(len(c) for c in column) <= SHORT_CELL for column in columns):
        return False  # text set in columns
    return sum(1 for column in columns if column) >= 2
