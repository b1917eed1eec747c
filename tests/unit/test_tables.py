"""Markdown tables from a box engine's aligned cells, on synthetic detector boxes: a page that
clearly holds a table gets one; prose, columns, a table of contents and lists do not."""

import math
import random
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from venvserve_worker.backends._layout import TextLine, layout_text, render
from venvserve_worker.backends._reading_order import fragment
from venvserve_worker.backends._table import cells_of, find_tables, markdown

CHAR_W = 0.55  # width of one character, in text heights


def box(x, y, text, height=20.0):
    """An upright fragment with its top-left corner at (x, y)."""
    return (x, y, x + len(text) * CHAR_W * height, y + height, text)


def page(boxes, degrees=0.0, centre=(600.0, 800.0), shuffle=None):
    """Fragments as a detector gives them: quads, rotated by ``degrees`` about ``centre``."""
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)

    def turn(x, y):
        dx, dy = x - centre[0], y - centre[1]
        return (centre[0] + dx * cos - dy * sin, centre[1] + dx * sin + dy * cos)

    out = [fragment([turn(x0, y0), turn(x1, y0), turn(x1, y1), turn(x0, y1)], text) for x0, y0, x1, y1, text in boxes]
    if shuffle is not None:
        random.Random(shuffle).shuffle(out)
    return out


ABOVE = "The following table lists the samples that were read, with their counts."
BELOW = "Counts are per page and include the samples that were read twice."
COLUMNS = (100.0, 400.0, 650.0)
ROWS = [("Name", "Count", "Note"), ("alpha", "14", "first sample"), ("beta", "27", "second one"),
        ("gamma", "140", "a third"), ("delta", "3.5", "last")]


def table_page(rows=ROWS, columns=COLUMNS, top=200.0, pitch=30.0, split=False):
    """Prose, a table (None: an empty cell), prose. With ``split``, the detector cuts each
    cell of two words in two, as it does when a word gap is wide."""
    boxes = [box(100, top - 60, ABOVE)]
    y = top
    for row in rows:
        for x, cell in zip(columns, row):
            if cell is None:
                continue
            words = cell.split()
            if split and len(words) == 2:
                boxes.append(box(x, y, words[0]))
                boxes.append(box(x + (len(words[0]) + 1) * 11.0, y, words[1]))
            else:
                boxes.append(box(x, y, cell))
        y += pitch
    boxes.append(box(100, y + 30, BELOW))
    return boxes


def expected(rows=ROWS):
    cells = [["" if c is None else c for c in row] for row in rows]
    return "\n".join(["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
                     + ["| " + " | ".join(row) + " |" for row in cells[1:]])


def test_a_clear_table_becomes_a_markdown_table_between_its_paragraphs():
    md = layout_text(page(table_page(split=True), shuffle=5), markdown=True)
    assert md.split("\n\n") == [ABOVE, expected(), BELOW]
    assert expected().splitlines()[:3] == ["| Name | Count | Note |", "|---|---|---|",
                                           "| alpha | 14 | first sample |"]


def test_a_line_above_with_a_note_at_its_end_stays_out_of_the_table():
    boxes = table_page() + [box(1000, 140, "[12]")]  # on ABOVE's line, far to its right
    md = layout_text(page(boxes, -1.5, shuffle=6), markdown=True)
    assert md.split("\n\n") == [ABOVE + " [12]", expected(), BELOW]


def test_an_empty_cell_stays_empty_in_its_column():
    rows = ROWS[:2] + [("beta", None, "second one"), ("gamma", "140", None)] + ROWS[4:]
    md = layout_text(page(table_page(rows), shuffle=2), markdown=True)
    assert md.split("\n\n") == [ABOVE, expected(rows), BELOW]
    assert "| beta |  | second one |" in md and "| gamma | 140 |  |" in md


def test_a_table_on_a_page_tilted_by_1_5_degrees():
    for degrees in (1.5, -1.5):
        md = layout_text(page(table_page(split=True), degrees, shuffle=7), markdown=True)
        assert md.split("\n\n") == [ABOVE, expected(), BELOW], degrees


def test_a_cell_spanning_two_columns_keeps_its_row_and_a_pipe_is_escaped():
    rows = ROWS[:2] + [("beta", "27 (estimated from the sample)", None)] + ROWS[3:4] + [
        ("delta", "3.5", "a|b"), ("epsilon", "8", "rare")]
    md = layout_text(page(table_page(rows)), markdown=True)
    assert md.split("\n\n")[1].splitlines()[3:] == [
        "| beta | 27 (estimated from the sample) |  |", "| gamma | 140 | a third |",
        "| delta | 3.5 | a\\|b |", "| epsilon | 8 | rare |"]


def test_a_cell_wrapped_onto_a_second_line_stays_in_its_row():
    boxes = table_page()
    boxes = [b if b[1] < 260 else (b[0], b[1] + 30, b[2], b[3] + 30, b[4]) for b in boxes]
    boxes.append(box(650, 260, "and its wrapped end"))  # under "first sample"
    md = layout_text(page(boxes, 1.5, shuffle=4), markdown=True)
    assert md.split("\n\n")[1].splitlines()[2:4] == [
        "| alpha | 14 | first sample and its wrapped end |", "| beta | 27 | second one |"]


def test_tight_columns_part_where_the_other_rows_part_and_a_cell_cut_in_every_row_stays_whole():
    """"alpha" and "1.0" stand 0.45 heights apart, closer than the pieces of one cell may; the
    detector cut each "Char" cell after its name, 0.3 heights apart, in every row."""
    rows = [("alpha", "1.0", "SOH", "(start of heading)"), ("gamma", "1.7", "STX", "(start of text)"),
            ("be", "2.5", "ETX", "(end of text)")]
    boxes = [box(100, 100, "Name"), box(164, 100, "Ratio"), box(260, 100, "Char")]
    for i, (name, ratio, char, what) in enumerate(rows):
        y = 130 + 30 * i
        boxes += [box(100, y, name), box(164, y, ratio), box(260, y, char), box(299, y, what)]
    assert layout_text(page(boxes, 1.5, shuffle=8), markdown=True) == "\n".join([
        "| Name | Ratio | Char |", "|---|---|---|", "| alpha | 1.0 | SOH (start of heading) |",
        "| gamma | 1.7 | STX (start of text) |", "| be | 2.5 | ETX (end of text) |"])


def test_a_word_gap_inside_cells_is_no_gutter_where_some_rows_reach_into_it():
    """The detector cut every "Char" cell after its name; in most rows the rest starts half a
    height on, in two rows a fifth: the gap is a word space, not a gutter between columns."""
    names = ["NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "DLE", "DC1", "DC2", "DC3"]
    boxes = [box(100, 100, "Oct"), box(180, 100, "Char")]
    for i, name in enumerate(names):
        y = 130 + 30 * i
        boxes += [box(100, y, "%03o" % i), box(180, y, name), box(213 + (4 if i % 6 == 1 else 10), y, "(code)")]
    lines = layout_text(page(boxes, shuffle=3), markdown=True).splitlines()
    assert lines[:3] == ["| Oct | Char |", "|---|---|", "| 000 | NUL (code) |"] and len(lines) == 14, lines


def test_plain_text_is_not_changed_by_the_table():
    text = layout_text(page(table_page(split=True), 1.5, shuffle=3))
    assert text.splitlines() == [ABOVE] + [" ".join(row) for row in ROWS] + [BELOW]
    lines = [TextLine(t, 100, 900, 100 + 30 * i, 120 + 30 * i, cells=((100, 300, t[:5]), (400, 900, t[5:])))
             for i, t in enumerate(["row one of it", "row two of it", "row 3 of it 3"])]
    assert render(lines, markdown=False) == render([line._replace(cells=None) for line in lines], False)


# -- what is no table ------------------------------------------------------------------

PROSE = ["Optical character recognition turns the picture of a page into text that a",
         "program can search, and a reader expects that text to follow the layout of",
         "the page, with its paragraphs whole and its tables as tables, but only the",
         "tables that the page really has: a wrong table is worse than none at all."]


def test_prose_is_no_table_even_where_the_detector_cuts_its_lines():
    boxes = []
    for i, line in enumerate(PROSE):
        cut = line.index(" ", 25 + 7 * i)  # cut each line at a different word, a wide gap
        boxes += [box(100, 100 + 30 * i, line[:cut]), box(100 + (cut + 3) * 11.0, 100 + 30 * i, line[cut + 1:])]
    md = layout_text(page(boxes), markdown=True)
    assert "|" not in md and md == " ".join(PROSE)


LEFT_COLUMN = ["The Portable Document Format provides", "a number of features which enhance the",
               "experience of reading a document on the", "screen, but which are of little value to",
               "a document which is merely printed. It", "is possible to exploit these features,"]
RIGHT_COLUMN = ["The markup techniques to be described", "have been utilised in the production of",
                "the PDF version of this document itself.", "This has been formatted using the ms",
                "macro package; thus, usage examples may", "be found in the document source file."]


def test_a_two_column_page_is_no_table():
    boxes = [box(100, 100, "Producing Documents in Columns", height=34.0)]
    for i, (left, right) in enumerate(zip(LEFT_COLUMN, RIGHT_COLUMN)):
        boxes += [box(100, 160 + 30 * i, left), box(620, 160 + 30 * i, right)]
    assert "|" not in layout_text(page(boxes, shuffle=1), markdown=True)
    # Nor when columns reach the layout as the cells of one block.
    lines = [TextLine(left + " " + right, 100, 1060, 160 + 30 * i, 180 + 30 * i,
                      cells=((100, 100 + 11 * len(left), left), (620, 620 + 11 * len(right), right)))
             for i, (left, right) in enumerate(zip(LEFT_COLUMN, RIGHT_COLUMN))]
    assert "|" not in render(lines, markdown=True)


def test_a_table_of_contents_with_dot_leaders_is_no_table():
    entries = [("1", "Introduction", "1"), ("2", "Reading order", "5"), ("3", "Tables", "12"),
               ("4", "Markdown", "20")]
    boxes = []
    for i, (number, title, page_no) in enumerate(entries):
        y = 100 + 30 * i
        boxes += [box(100, y, number), box(160, y, title + " " + "." * (40 - len(title))), box(800, y, page_no)]
    md = layout_text(page(boxes), markdown=True)
    assert "|" not in md and "Reading order" in md


def test_a_bullet_list_with_bullets_apart_from_their_text_is_no_table():
    items = ["the first point of the list", "the second point", "a third point, the last"]
    for marker in ("\u2022", "1."):
        boxes = []
        for i, item in enumerate(items):
            mark = marker if marker == "\u2022" else "%d." % (i + 1)
            boxes += [box(100, 100 + 60 * i, mark), box(150, 100 + 60 * i, item),
                      box(150, 130 + 60 * i, "and its second line")]
        md = layout_text(page(boxes), markdown=True)
        assert "|" not in md, md
        assert md.splitlines()[0] in ("- the first point of the list and its second line",
                                      "1. the first point of the list and its second line")


def test_two_aligned_lines_are_too_few_for_a_table():
    assert "|" not in layout_text(page(table_page(ROWS[:2])), markdown=True)


# -- pieces ----------------------------------------------------------------------------

def test_close_fragments_are_one_cell():
    assert cells_of([(300, 400, "(null"), (100, 160, "NUL"), (165, 200, "'\\0'"), (405, 500, "char)")], 20) == (
        (100, 200, "NUL '\\0'"), (300, 500, "(null char)"))


def test_markdown_of_a_grid():
    assert markdown([["a", "b"], ["1", ""]]) == "| a | b |\n|---|---|\n| 1 |  |"


def test_find_tables_reports_the_rows_it_takes():
    rows = [(((0, 50, "x"), (100, 150, "y")), 30 * i, 30 * i + 20, 0) for i in range(4)]
    rows.insert(0, (((0, 600, "a line of prose over the whole width"),), -40, -20, 0))
    assert find_tables(rows) == [(1, 5, [["x", "y"]] * 4)]


def test_a_row_the_reading_order_split_in_two_lines_at_one_height_stays_one_row():
    """Overlapping boxes side by side ("(device control 3" over "3)") are two lines to the reading
    order; to the table they are one row."""
    def line(y, *cells):
        return (tuple(cells), y, y + 20, 0)

    lines = [line(0, (0, 40, "021"), (100, 140, "DC1"), (160, 400, "(device control 1)")),
             line(30, (0, 40, "022"), (100, 140, "DC2"), (380, 400, "2)")),
             line(31, (160, 390, "(device control 2")),
             line(60, (0, 40, "023"), (100, 140, "DC3"), (160, 400, "(device control 3)"))]
    assert find_tables(lines) == [(0, 4, [["021", "DC1", "(device control 1)"],
                                          ["022", "DC2", "(device control 2 2)"],
                                          ["023", "DC3", "(device control 3)"]])]


# -- property --------------------------------------------------------------------------

grids = st.tuples(
    st.integers(min_value=1, max_value=9),  # rows
    st.lists(st.tuples(st.integers(min_value=1, max_value=4), st.integers(min_value=2, max_value=10)),
             min_size=1, max_size=5),  # columns: words per cell, characters per word
    st.lists(st.booleans(), max_size=45),  # cells left empty
    st.integers(min_value=0, max_value=3),  # prose lines above
    st.floats(min_value=-2.0, max_value=2.0),
    st.integers(min_value=0, max_value=1000),
)


@settings(max_examples=200, deadline=None)
@given(grids)
def test_every_fragment_is_in_the_markdown_exactly_once(grid):
    rows, columns, empty, prose, degrees, seed = grid
    boxes, n, y = [], 0, 100.0

    def word(length):
        nonlocal n
        n += 1
        return ("w%03d" % n).ljust(length, "x")

    for _ in range(prose):
        boxes.append(box(100, y, " ".join(word(6) for _ in range(10))))
        y += 30
    for r in range(rows):
        x = 100.0
        for c, (words, length) in enumerate(columns):
            text = " ".join(word(length) for _ in range(words))
            if not (empty[r * len(columns) + c] if r * len(columns) + c < len(empty) else False):
                boxes.append(box(x, y, text))
            x += (words * (length + 1)) * 11.0 + 40
        y += 30
    md = layout_text(page(boxes, degrees, shuffle=seed), markdown=True)
    for fragment in boxes:
        for token in fragment[4].split():
            assert len(re.findall(r"(?<!\w)%s(?!\w)" % token, md)) == 1, (token, md)


def test_a_running_head_over_the_columns_is_not_the_header():
    """ascii(7)'s second page: the man page's running head (three pieces that happen to stand
    over the first, fifth and last columns) right above the table's rows is no header row."""
    from venvserve_worker.backends._layout import TextLine, render

    def row(y, cells, width=12):
        return TextLine(" ".join(t for _, t in cells), cells[0][0], cells[-1][0] + 60, y, y + 20,
                        cells=tuple((x, x + width * len(t), t) for x, t in cells))

    # Set small, the head's middle piece stands inside the fifth column.
    head = row(40, [(100, "ascii(7)"), (700, "Miscellaneous Information Manual"), (1400, "ascii(7)")], width=5)
    rows = [row(80 + 30 * i, [(100, "0%d" % (53 + i)), (250, str(43 + i)), (400, "2%s" % "BCDEFG"[i]),
                             (550, "+,-./0"[i]), (700, "1%d" % (53 + i)), (900, str(107 + i)),
                             (1100, "6%s" % "BCDEFG"[i]), (1400, "klmnop"[i])]) for i in range(6)]
    md = render([head] + rows, True)
    assert md.splitlines()[0] == "ascii(7) Miscellaneous Information Manual ascii(7)"
    assert md.splitlines()[2] == "| 053 | 43 | 2B | + | 153 | 107 | 6B | k |"
    assert md.splitlines()[3] == "|---|---|---|---|---|---|---|---|"
