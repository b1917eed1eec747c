"""Tesseract's TSV to lines in reading order: running heads, table rows, tilt, malformed rows."""

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from venvserve_worker.backends._layout import render
from venvserve_worker.backends._tesseract_tsv import (in_reading_order, page_lines, parse, replace, shift,
                                                          table_regions, tsv_lines)

HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"


def tsv(blocks, degrees: float = 0.0, centre=(800.0, 1000.0)) -> str:
    """blocks: [[(x, y, "words of one line"), ...] per block]; each word 12 px per letter,
    20 px tall, 10 px apart, turned by ``degrees`` about ``centre`` (word boxes stay upright,
    as tesseract's are)."""
    a = math.radians(degrees)
    rows = [HEADER]
    for b, lines in enumerate(blocks, 1):
        for n, (x, y, text) in enumerate(lines, 1):
            words, cx = [], x
            for word in text.split():
                w = 12.0 * len(word)
                mx, my = cx + w / 2 - centre[0], y + 10 - centre[1]
                rx = centre[0] + mx * math.cos(a) - my * math.sin(a)
                ry = centre[1] + mx * math.sin(a) + my * math.cos(a)
                half_h = 10 + abs(w / 2 * math.sin(a))
                words.append((round(rx - w / 2), round(ry - half_h), round(w), round(2 * half_h), word))
                cx += w + 10
            left = min(v[0] for v in words)
            top = min(v[1] for v in words)
            right = max(v[0] + v[2] for v in words)
            bottom = max(v[1] + v[3] for v in words)
            rows.append("4\t1\t%d\t1\t%d\t0\t%d\t%d\t%d\t%d\t-1\t\n" % (b, n, left, top, right - left, bottom - top))
            for k, (wl, wt, ww, wh, word) in enumerate(words, 1):
                rows.append("5\t1\t%d\t1\t%d\t%d\t%d\t%d\t%d\t%d\t95\t%s\n" % (b, n, k, wl, wt, ww, wh, word))
    return "".join(rows)


def texts(lines):
    return [line.text for line in lines]


def test_a_running_head_in_three_blocks_is_one_line_on_top():
    body = [(100, 200 + 30 * i, "body line number %d of the page" % i) for i in range(8)]
    page = tsv([[(100, 100, "ascii(7)")], body, [(700, 100, "Miscellaneous Information Manual")],
                [(1400, 100, "ascii(7)")]])
    assert texts(tsv_lines(page))[:2] == ["ascii(7)", "body line number 0 of the page"]
    lines = texts(page_lines(page))
    assert lines[0] == "ascii(7) Miscellaneous Information Manual ascii(7)"
    assert lines[1:] == ["body line number %d of the page" % i for i in range(8)]


def test_table_cells_split_into_blocks_are_read_row_by_row():
    rows = [("012", "10", "0A", "LF"), ("013", "11", "0B", "VT"), ("014", "12", "0C", "FF")]
    columns = [[(100 + 200 * c, 300 + 30 * r, row[c]) for r, row in enumerate(rows)] for c in range(4)]
    assert texts(page_lines(tsv(columns))) == [" ".join(row) for row in rows]


def two_columns(lines=60, gutter=40):
    """Two columns of 836 px lines, ``gutter`` px apart, 1800 px tall."""
    text = "column line %02d reads on here and further on and on again to the end"
    left = [(100, 300 + 30 * i, "left " + text % i) for i in range(lines)]
    right = [(100 + 836 + gutter, 300 + 30 * i, "right " + text % i) for i in range(lines)]
    return left, right


def test_a_tilted_two_column_page_keeps_its_lines_and_columns():
    left, right = two_columns()
    page = tsv([left, right], degrees=1.5, centre=(936, 1200))
    # The upright line boxes of a 1.5 degree page are taller than the line pitch, and over the
    # column's height the tilt moves a line's end further than the gutter is wide: read as
    # upright boxes, the columns run into each other.
    box = parse(page)[0].box
    assert box[3] - box[1] > 30
    # As quads along their words, no two lines merge and the columns are read one by one.
    assert texts(page_lines(page)) == [t for _, _, t in left] + [t for _, _, t in right]


def test_tesseracts_paragraphs_and_type_size_stay_as_hints():
    page = tsv([[(100, 100, "First paragraph of text that ends here."), (100, 130, "Second one starts.")]])
    lines = page_lines(page)
    assert len({line.para for line in lines}) == 1 and all(line.size == 20.0 for line in lines)
    assert render(lines, True) == "First paragraph of text that ends here. Second one starts."


def test_malformed_rows_are_skipped():
    good = tsv([[(100, 100, "kept words")]])
    junk = ["", "\t\t\t", "4\t1", "5\tx\t1\t1\t1\t1\t1\t1\t1\t1\t1\tword", "4\t1\t1\t1\t9\t0\t1\t2\tthree\t4\t-1\t",
            "5\t1\t1\t1\t99\t1\t10\t10\t10\t10\t95\torphan", "level\tjunk", "\x00\x01", "9" * 5000]
    lines = page_lines(good + "\n".join(junk) + "\n")
    assert texts(lines) == ["kept words"]
    assert page_lines("") == [] and page_lines(HEADER) == [] and page_lines("no header at all") == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 2000),
                                   st.text(alphabet="abcXYZ09", min_size=1, max_size=8)),
                         min_size=1, max_size=6), min_size=1, max_size=6),
       st.floats(-3.0, 3.0), st.integers(0, 2 ** 16))
def test_every_word_is_read_exactly_once(blocks, degrees, seed):
    blocks = [[(x, y, text) for x, y, text in block] for block in blocks]
    random.Random(seed).shuffle(blocks)
    words = sorted(w for block in blocks for _, _, t in block for w in t.split())
    assert sorted(w for line in page_lines(tsv(blocks, degrees)) for w in line.text.split()) == words


def vertical_line(block: int, x: int, top: int, text: str) -> str:
    """A column of single characters that tesseract took for one line read downwards."""
    height = 40 * len(text)
    return ("4\t1\t%d\t1\t1\t0\t%d\t%d\t16\t%d\t-1\t\n" % (block, x, top, height)
            + "5\t1\t%d\t1\t1\t1\t%d\t%d\t16\t%d\t20\t%s\n" % (block, x, top, height, text))


def test_columns_of_cells_and_vertical_garbage_mark_a_table_to_read_again():
    intro = [(100, 100 + 30 * i, "a paragraph of prose above the table, long enough %d" % i) for i in range(3)]
    codes = [(100, 300 + 40 * i, "0%d" % (53 + i)) for i in range(6)]
    hexes = [(300, 300 + 40 * i, "2%s" % "BCDEF0"[i]) for i in range(6)]
    page = tsv([intro, codes, hexes]) + vertical_line(9, 500, 300, "OMAIDU")
    lines = parse(page)
    regions = table_regions(lines)
    assert len(regions) == 1
    left, top, right, bottom = regions[0]
    assert (left, top) == (100, 300) and right >= 516 and bottom >= 520
    # The crop's second reading replaces the lines inside it, moved to the page's frame.
    again = parse(tsv([[(0, 40 * i, "0%d 2%s %s" % (53 + i, "BCDEF0"[i], "+,-./0"[i])) for i in range(6)]]))
    merged = replace(lines, regions, [shift(again, left, top)])
    assert [line.text for line in in_reading_order(merged)] == [t for _, _, t in intro] + [
        "0%d 2%s %s" % (53 + i, "BCDEF0"[i], "+,-./0"[i]) for i in range(6)]
    assert min(line.box[1] for line in merged if line.text.startswith("053")) == 300


def test_prose_columns_a_running_head_and_a_list_are_no_table():
    left, right = two_columns(lines=20)
    head = [[(100, 100, "ascii(7)")], [(700, 100, "Miscellaneous Information Manual")], [(1400, 100, "ascii(7)")]]
    bullets = [[(100, 2000 + 30 * i, "-") for i in range(4)],
               [(140, 2000 + 30 * i, "an item of a list that runs on for a while %d" % i) for i in range(4)]]
    assert table_regions(parse(tsv([left, right] + head + bullets))) == []
    assert table_regions([]) == []


def test_columns_of_cells_alone_are_left_as_read():
    """Short cells in blocks of their own, but no vertical garbage: the reading order puts the
    rows together, so nothing is read again."""
    codes = [(100, 300 + 40 * i, "0%d" % (53 + i)) for i in range(6)]
    hexes = [(300, 300 + 40 * i, "2%s" % "BCDEF0"[i]) for i in range(6)]
    lines = parse(tsv([codes, hexes]))
    assert table_regions(lines) == []
    assert [line.text for line in in_reading_order(lines)] == ["0%d 2%s" % (53 + i, "BCDEF0"[i]) for i in range(6)]


def test_a_page_broken_everywhere_is_read_again_a_bounded_number_of_times():
    """Ten tables one under the other, each with its vertical garbage: a second reading each
    would be ten more tesseract calls; the largest four regions are read again."""
    cells = [[(100, 100 + 400 * n + 40 * i, "0%d" % i) for i in range(4 + n % 3)] for n in range(10)]
    page = tsv(cells) + "".join(vertical_line(100 + n, 300, 100 + 400 * n, "OMAI") for n in range(10))
    regions = table_regions(parse(page))
    assert len(regions) == 4 and regions == sorted(regions, key=lambda r: r[1])
    assert all(r[3] - r[1] >= 5 * 40 - 20 for r in regions)  # the taller tables, of 5 and 6 rows
