"""A page's lines, in reading order, as the answer's text or markdown.

Text is the lines joined by newlines. Markdown reads like the page:
paragraphs are lines joined by spaces (a word hyphenated at a line end is
joined back), a paragraph ends at a blank gap, a first-line indent, a short
line that ends a sentence, or a column change that starts afresh; lines
clearly taller than the body text become headings (# to ###); bullets and
numbers at a line start become list items, continued by their indented lines.
Lines whose cells clearly line up in columns become a table (see ``_table``).

Box engines get their lines from ``_reading_order``; tesseract passes its own
lines, with its paragraph numbers as hints (and no cells: its tables stay text).
"""

import re
from statistics import median
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

from ._reading_order import reading_order
from ._table import Cell, find_tables
from ._table import markdown as table_markdown


class TextLine(NamedTuple):
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    block: int = 0  # column segment: lines of one block share a left edge
    para: Optional[int] = None  # the engine's own paragraph number, where it has one
    size: Optional[float] = None  # text height, where the box is taller (a superscript in it)
    cells: Optional[Tuple[Cell, ...]] = None  # fragments' (x0, x1, text), left to right, from a box engine

    @property
    def height(self) -> float:
        return self.size if self.size is not None else self.bottom - self.top


HEADING = 1.25  # a line this much taller than the body text is a heading
FULL_LINE_HEADING = 1.6  # a line as wide as its block is a heading only when this much taller
HEADING_SAME = 0.12  # heading heights this close are one level
MAX_HEADING_CHARS = 120
MIN_HEADING_CHARS = 4
PARAGRAPH_GAP = 0.5  # blank gap beyond a block's usual one, in body heights, that ends a paragraph
INDENT = 1.0  # first-line indent, in body heights
SHORT_LINE = 0.85  # a line narrower than this fraction of its block may end a paragraph
HEADING_LINE = 0.75  # narrower still and without a full stop, it is a line of its own

# Bullets, and what OCR engines read a bullet as ("°", ".", "«").
_BULLET = re.compile(r"^\s*[-*+.\u00b0\u00ab\u2022\u00b7\u25aa\u25e6\u2023\u2013\u2014\u25cf\u25a0]\s+(?P<rest>.+)$")
_NUMBERED = re.compile(r"^\s*\(?(?P<num>\d{1,3}|[a-zA-Z])[.)]\s+(?P<rest>.+)$")
_SENTENCE_END = re.compile(r"[.!?:;)\"\u201d]$")
_HYPHENATED = re.compile(r"[A-Za-z\u00c0-\u024f]-$")


def layout_text(fragments: Sequence[Any], markdown: bool = False) -> str:
    """Text of a box engine's fragments (see _reading_order.Fragment) in reading order."""
    lines = [TextLine(line.text, line.x0, line.x1, line.top, line.bottom, line.block,
                      cells=tuple((b.x0, b.x1, b.text.strip()) for b in line.boxes))
             for line in reading_order(fragments)]
    return render(lines, markdown)


def render(lines: Sequence[TextLine], markdown: bool) -> str:
    lines = [line for line in lines if line.text.strip()]
    if not lines:
        return ""
    if not markdown:
        return "\n".join(line.text.strip() for line in lines)
    body = median(line.height for line in lines if len(line.text) >= 20) if any(
        len(line.text) >= 20 for line in lines) else median(line.height for line in lines)
    body = max(body, 1.0)
    blocks = _block_geometry(lines)
    levels = _heading_levels(lines, body, blocks)
    tables = {first: (end, grid) for first, end, grid in find_tables(
        [(line.cells, line.top, line.bottom, line.block) for line in lines])}
    out: List[Tuple[str, str]] = []  # finished (kind, markdown) blocks
    current: List[str] = []  # words of the paragraph or list item being built
    kind = None  # "p", "li" or None
    previous = None
    skip_to = 0
    for n, line in enumerate(lines):
        if n < skip_to:
            continue  # a table's row
        if n in tables:
            _flush(out, current, kind)
            skip_to, grid = tables[n]
            out.append(("table", table_markdown(grid)))
            current, kind, previous = [], None, None
            continue
        text = line.text.strip()
        level = levels.get(round(line.height / body, 1), 0) if _may_be_heading(line, body, blocks) else 0
        if level and kind == "p" and line.block == previous.block and line.top - previous.bottom < body \
                and not _SENTENCE_END.search(previous.text.strip()):
            level = 0  # the end of a sentence the line above began ("(IPv4 and IPv6)." in parentheses)
        if level:
            if kind == "h%d" % level and previous is not None and line.top - previous.bottom < body:
                current.append(text)  # a heading over two lines
            else:
                _flush(out, current, kind)
                current, kind = [text], "h%d" % level
            previous = line
            continue
        item = _list_item(text)
        if item is not None:
            _flush(out, current, kind)
            current, kind = [item], "li"
        elif kind in ("p", "li") and not _breaks(previous, line, body, blocks, kind):
            _join(current, text)
        else:
            _flush(out, current, kind)
            current, kind = [text], "p"
        previous = line
    _flush(out, current, kind)
    parts = [out[0][1]]
    for (before, _), (kind, text) in zip(out, out[1:]):
        parts.append("\n" if before == kind == "li" else "\n\n")  # a list stays one list
        parts.append(text)
    return "".join(parts)


def _block_geometry(lines: Sequence[TextLine]) -> dict:
    """block -> (left edge, right edge, usual blank gap between its lines, line count).
    A block of one line (a heading or a line spanning columns) is measured against the page."""
    edges: dict = {}
    gaps: dict = {}
    for before, line in zip([None] + list(lines), lines):
        edge = edges.setdefault(line.block, [line.x0, line.x1, 0])
        edge[0], edge[1], edge[2] = min(edge[0], line.x0), max(edge[1], line.x1), edge[2] + 1
        if before is not None and before.block == line.block:
            gaps.setdefault(line.block, []).append(max(0.0, line.top - before.bottom))
    page = (min(line.x0 for line in lines), max(line.x1 for line in lines))
    return {block: (left, right, median(gaps[block]) if block in gaps else 0.0, count) if count > 1
            else (page[0], page[1], 0.0, 1) for block, (left, right, count) in edges.items()}


def _may_be_heading(line: TextLine, body: float, blocks: dict) -> bool:
    """Short enough, not a list item, and either clearly tall or not a full line of text."""
    if len(line.text) > MAX_HEADING_CHARS or _list_item(line.text.strip()) is not None:
        return False
    if sum(c.isalnum() for c in line.text) < MIN_HEADING_CHARS:
        return False  # a detector's box around a short word is mostly padding: its height says little
    if next((c for c in line.text if c.isalpha()), "").islower():
        return False  # a paragraph's last word ("bootup."), tall for its ascenders and descenders
    left, right = blocks[line.block][:2]
    return line.height >= FULL_LINE_HEADING * body or line.x1 - left < SHORT_LINE * (right - left)


def _heading_levels(lines: Sequence[TextLine], body: float, blocks: dict) -> dict:
    """Height ratio (to 0.1) -> heading level: the tallest size on the page is "#", the next
    "##", any smaller one "###"; sizes within HEADING_SAME of each other are one size."""
    ratios = sorted({round(line.height / body, 1) for line in lines
                     if _may_be_heading(line, body, blocks) and line.height / body >= HEADING}, reverse=True)
    levels: dict = {}
    level, last = 0, None
    for ratio in ratios:
        if last is None or ratio < last * (1 - HEADING_SAME):
            level, last = min(level + 1, 3), ratio
        levels[ratio] = level
    return levels


def _list_item(text: str) -> Optional[str]:
    match = _BULLET.match(text)
    if match:
        return "- " + match.group("rest")
    match = _NUMBERED.match(text)
    if match and (match.group("num").isdigit() or text.lstrip().startswith("(")):
        return "%s. %s" % (match.group("num"), match.group("rest"))
    return None


def _breaks(previous: Optional[TextLine], line: TextLine, body: float, blocks: dict, kind: str) -> bool:
    """Does ``line`` start a new paragraph after ``previous``?"""
    if previous is None:
        return True
    before, text = previous.text.strip(), line.text.strip()
    if _HYPHENATED.search(before) and text[:1].islower():
        return False  # a word split over two lines
    ended = bool(_SENTENCE_END.search(before))
    if line.block != previous.block:
        if line.para is not None:
            # An engine's own blocks (tesseract's) are paragraphs: one runs on into the
            # next block only mid-sentence, as a paragraph does across a column break.
            return ended or not text[:1].islower()
        if blocks[line.block][3] == 1 or blocks[previous.block][3] == 1:
            return ended or not text[:1].islower()  # a line of its own: a title, a caption
        # A column change: the paragraph runs on unless the sentence ended and the new
        # column starts with a capital.
        return ended and not text[:1].islower()
    left, right, gap, _ = blocks[line.block]
    if line.top - previous.bottom > gap + PARAGRAPH_GAP * body:
        return True  # a blank gap wider than the block's usual line spacing
    short = previous.x1 - left < SHORT_LINE * (right - left)
    if kind == "li":  # an item runs on into indented lines, after a line that was full
        return short or line.x0 - left < 0.5 * body
    if line.para is not None and previous.para is not None and line.para != previous.para and (ended or short):
        return True
    if line.x0 - left > INDENT * body and line.x0 - previous.x0 > 0.5 * body:
        return True  # first-line indent
    if ended:
        return short
    # Unfinished and well short of the edge, before a capital: a heading set in the body size.
    return previous.x1 - left < HEADING_LINE * (right - left) and text[:1].isupper()


def _join(words: List[str], text: str) -> None:
    last = words[-1]
    if _HYPHENATED.search(last) and text[:1].islower():
        words[-1] = last[:-1] + text  # "exam-" + "ple" -> "example"
    else:
        words[-1] = last + " " + text


def _flush(out: List[Tuple[str, str]], current: List[str], kind: Optional[str]) -> None:
    if not current or kind is None:
        return
    text = " ".join(current)
    if kind.startswith("h"):
        text = "#" * int(kind[1:]) + " " + text
    elif text.startswith(("#", ">")):
        text = "\\" + text  # the page's own "#" (a comment in an example) is text, not a heading
    out.append((kind, text))
