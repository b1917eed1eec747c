"""Reading order and markdown of the box engines, on synthetic detector boxes."""

import math
import random

import pytest

from venvserve_worker.backends._layout import TextLine, layout_text, render
from venvserve_worker.backends._reading_order import fragment, page_angle, reading_order

CHAR_W = 0.55  # width of one character, in text heights


def box(x: float, y: float, text: str, height: float = 20.0, width: float | None = None):
    """An upright fragment with its top-left corner at (x, y)."""
    w = width if width is not None else len(text) * CHAR_W * height
    return (x, y, x + w, y + height, text)


def page(boxes, degrees: float = 0.0, centre=(600.0, 800.0), shuffle: int | None = None):
    """Fragments as a detector gives them: quads, rotated by ``degrees`` about ``centre``."""
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)

    def turn(x, y):
        dx, dy = x - centre[0], y - centre[1]
        return (centre[0] + dx * cos - dy * sin, centre[1] + dx * sin + dy * cos)

    out = [fragment([turn(x0, y0), turn(x1, y0), turn(x1, y1), turn(x0, y1)], text)
           for x0, y0, x1, y1, text in boxes]
    if shuffle is not None:
        random.Random(shuffle).shuffle(out)
    return out


def texts(fragments):
    return [line.text for line in reading_order(fragments)]


BODY = [
    "Reading order matters most when a page is tilted by a scanner",
    "and its lines drift a little across the width of the page.",
    "A line grouping that uses upright boxes sees each long line",
    "grow taller by the width times the sine of the angle, so that",
    "neighbouring lines overlap and merge or swap their order.",
    "Short line.",
]


def single_column(x=100.0, y=100.0, pitch=30.0):
    boxes = [box(x, y, "A Heading Above", height=36.0)]
    y += 60
    for line in BODY:
        boxes.append(box(x, y, line))
        y += pitch
    return boxes


@pytest.mark.parametrize("degrees", [0.0, 1.5, -1.5, 3.0])
def test_a_tilted_single_column_keeps_its_lines_in_order(degrees):
    fragments = page(single_column(), degrees, shuffle=7)
    assert math.isclose(math.degrees(page_angle(fragments)), degrees, abs_tol=0.05)
    assert texts(fragments) == ["A Heading Above"] + BODY


def test_upright_boxes_around_a_tilted_page_would_merge_lines():
    """Why the deskew is needed: at 1.5° the upright box of a 680 px line is 18 px taller."""
    fragments = page(single_column(), 1.5)
    upright_height = max(p[1] for p in fragments[1].quad) - min(p[1] for p in fragments[1].quad)
    assert upright_height > 30.0  # taller than the line pitch


def test_fragments_of_one_line_join_left_to_right_under_tilt():
    boxes = [box(100, 100, "left part of"), box(400, 100, "the first line"),
             box(100, 130, "second line starts"), box(430, 130, "and ends")]
    assert texts(page(boxes, 1.5, shuffle=3)) == ["left part of the first line", "second line starts and ends"]


def two_columns(top=200.0, lines=12, pitch=28.0):
    left, right = [], []
    for i in range(lines):
        left.append(box(80, top + i * pitch, "left column line %02d of body text here" % i, width=480))
        right.append(box(640, top + i * pitch, "right column line %02d of body text" % i, width=480))
    return left, right


@pytest.mark.parametrize("degrees", [0.0, 1.5])
def test_two_columns_are_read_left_then_right(degrees):
    left, right = two_columns()
    got = texts(page(left + right, degrees, shuffle=1))
    assert got == [b[4] for b in left] + [b[4] for b in right]


def test_a_full_width_title_and_footer_stay_in_place_around_two_columns():
    left, right = two_columns(top=220.0)
    title = box(80, 100, "A Title That Spans Both Columns Of The Page", height=40.0, width=1040)
    authors = box(300, 160, "First Author and Second Author", height=22.0)
    footer = box(580, 600, "7", height=18.0)
    got = texts(page([title, authors, footer] + left + right, 1.0, shuffle=5))
    assert got == [title[4], authors[4]] + [b[4] for b in left] + [b[4] for b in right] + ["7"]


def test_a_running_header_across_the_columns_stays_one_line_on_top():
    left, right = two_columns(top=200.0)
    header = [box(80, 100, "JOURNAL OF THINGS"), box(900, 100, "Author, Other", width=220)]
    got = texts(page(header + left + right, 1.5, shuffle=6))
    assert got == ["JOURNAL OF THINGS Author, Other"] + [b[4] for b in left] + [b[4] for b in right]


def test_a_spanning_figure_caption_cuts_the_columns_into_bands():
    upper_left, upper_right = two_columns(top=100.0, lines=5)
    caption = box(80, 260, "Figure 1: a caption as wide as the page, between the bands", width=1040)
    lower_left, lower_right = two_columns(top=310.0, lines=5)
    got = texts(page(upper_left + upper_right + [caption] + lower_left + lower_right, shuffle=2))
    expected = upper_left + upper_right + [caption] + lower_left + lower_right
    assert got == [b[4] for b in expected]


def test_a_table_of_contents_is_not_split_into_columns():
    """Narrow page numbers on the right are not a column: rows stay rows."""
    rows = []
    for i in range(10):
        rows.append(box(80, 100 + i * 30, "Chapter %d title goes here" % (i + 1), width=500))
        rows.append(box(1000, 100 + i * 30, str(10 * i + 1), width=30))
    got = texts(page(rows, shuffle=4))
    assert got == ["Chapter %d title goes here %d" % (i + 1, 10 * i + 1) for i in range(10)]


@pytest.mark.parametrize("degrees", [0.0, 1.5])
def test_a_table_of_short_cells_is_read_row_by_row(degrees):
    """Four columns of one-word cells with wide gaps between them: a table, not four columns of
    text, so each row is one line (a gutter between short cells would read it column by column)."""
    cells = [["Item", "Ratio", "Count", "Note"], ["alpha", "1.0", "14", "list"], ["beta", "1.3", "27", "follow"],
             ["gamma", "1.7", "140", "0.25"], ["delta", "2.5", "3.5", "11"]]
    boxes = [box(100 + 200 * c, 100 + 40 * r, cell, width=24.0 * len(cell))
             for r, row in enumerate(cells) for c, cell in enumerate(row)]
    assert texts(page(boxes, degrees, shuffle=7)) == [" ".join(row) for row in cells]


def test_nothing_to_read_is_empty():
    assert layout_text([]) == "" and layout_text(page([box(0, 0, "   ")])) == ""


# -- markdown ------------------------------------------------------------------------

def lines_of(rows, x=100.0, width=800.0, height=20.0, pitch=28.0, top=100.0):
    """TextLines from (text, indent, height factor, blank lines before)."""
    out, y = [], top
    for text, indent, scale, blank in rows:
        y += blank * pitch
        h = height * scale
        w = min(width - indent, len(text) * CHAR_W * height)
        out.append(TextLine(text, x + indent, x + indent + w, y, y + h))
        y += max(pitch, h * 1.4)
    return out


FULL = "x" * 80  # a line that fills the column


def test_markdown_joins_paragraphs_and_hyphenated_words():
    rows = [("Results", 0, 1.8, 0),
            ("The measured error rate fell sharply once the pages were read in column order", 0, 1, 0),
            ("and the engine's own order was kept as a fallback; every page of the bench-", 0, 1, 0),
            ("marked set improved.", 0, 1, 0),
            ("A second paragraph starts after a blank line and runs over two lines of text that", 0, 1, 1),
            ("end here.", 0, 1, 0)]
    assert render(lines_of(rows), markdown=True).split("\n\n") == [
        "# Results",
        "The measured error rate fell sharply once the pages were read in column order and the "
        "engine's own order was kept as a fallback; every page of the benchmarked set improved.",
        "A second paragraph starts after a blank line and runs over two lines of text that end here.",
    ]
    assert render(lines_of(rows), markdown=False).splitlines() == [r[0] for r in rows]


def test_markdown_from_a_box_engine_page():
    boxes = [box(100, 60, "Introduction", height=34.0)]
    paragraph = ["Optical character recognition turns the picture of a page into text that",
                 "a program can search, and a reader expects that text to follow the lay-",
                 "out of the page, with its paragraphs whole."]
    y = 120
    for line in paragraph:
        boxes.append(box(100, y, line, width=1000 if line is not paragraph[-1] else 500))
        y += 28
    y += 30
    boxes.append(box(100, y, "Smaller Heading", height=26.0))
    y += 45
    for item in ("\u2022 the first point", "\u2022 the second point", "1. a numbered point"):
        boxes.append(box(100, y, item))
        y += 28
    md = layout_text(page(boxes, 1.5, shuffle=9), markdown=True)
    assert md.split("\n\n") == [
        "# Introduction",
        " ".join(paragraph).replace("lay- out", "layout"),
        "## Smaller Heading",
        "- the first point\n- the second point\n1. a numbered point",
    ]
    # Plain text keeps the page's lines.
    text = layout_text(page(boxes, 1.5, shuffle=9))
    assert text.splitlines()[:2] == ["Introduction", paragraph[0]]


def test_markdown_breaks_at_an_indent_and_at_a_short_line_that_ends_a_sentence():
    rows = [(FULL, 40, 1, 0), (FULL + ".", 0, 1, 0), ("Short and done.", 0, 1, 0),
            ("Next paragraph " + FULL, 0, 1, 0), ("Indented start " + FULL, 40, 1, 0), (FULL, 0, 1, 0)]
    md = render(lines_of(rows), markdown=True)
    assert len(md.split("\n\n")) == 3, md


# -- properties ------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

coordinate = st.floats(min_value=0, max_value=3000, allow_nan=False)
boxes_ = st.lists(st.tuples(coordinate, coordinate, st.floats(min_value=1, max_value=900),
                            st.floats(min_value=1, max_value=80)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(boxes_, st.floats(min_value=-5, max_value=5), st.booleans())
def test_every_fragment_is_read_exactly_once(raw, degrees, markdown):
    fragments = page([(x, y, x + w, y + h, "t%d" % i) for i, (x, y, w, h) in enumerate(raw)], degrees)
    words = [box.text for line in reading_order(fragments) for box in line.boxes]
    assert sorted(words) == sorted(f.text for f in fragments)
    layout_text(fragments, markdown)  # never raises


def test_markdown_from_tesseracts_blocks_and_misread_bullets():
    """Tesseract's blocks are paragraphs; its "°" and "." are bullets; a full line whose box a
    superscript made taller is no heading; a short numbered line stays a one-line item."""
    def line(text, x0, x1, top, block, size=20.0):
        return TextLine(text, x0, x1, top, top + (30 if "\u00b9" in text else 20), block, para=block * 10, size=size)

    lines = [line("1. Introduction", 100, 400, 100, 1),
             line("It might appear that it is simple to produce documents in a portable format,", 100, 1000, 140, 2),
             line("commonly known as PDF\u00b9, using troff as the formatter, which we describe.", 100, 1000, 165, 2,
                  size=21.0),
             line("\u00b0 Selecting a default view, which defines how the document will appear", 160, 1000, 205, 3),
             line("when it is opened.", 220, 500, 230, 3),
             line(". Adding meta-data.", 160, 500, 260, 4)]
    assert render(lines, markdown=True).split("\n\n") == [
        "1. Introduction",
        "It might appear that it is simple to produce documents in a portable format, commonly known as "
        "PDF\u00b9, using troff as the formatter, which we describe.",
        "- Selecting a default view, which defines how the document will appear when it is opened.\n"
        "- Adding meta-data.",
    ]


def test_a_heading_in_the_body_size_is_a_paragraph_of_its_own():
    rows = [("The Origins of Serial Pitch", 0, 1, 1), ("Lorem ipsum dolor sit amet " + FULL, 0, 1, 0),
            ("runs on to the end.", 0, 1, 0)]
    assert render(lines_of(rows), markdown=True).split("\n\n") == [
        "The Origins of Serial Pitch", "Lorem ipsum dolor sit amet " + FULL + " runs on to the end."]


def test_a_sentences_tall_last_words_and_a_comment_sign_are_no_headings():
    """Tesseract's type size is its words' height: "(IPv4 and IPv6)." in parentheses and
    "bootup." with ascenders and descenders stand taller than the body's median word, but they
    end a sentence begun above; a line that starts with "#" is the page's own text."""
    def line(text, top, x1=1500.0, size=19.0):
        return TextLine(text, 300.0, x1, top, top + size, block=1, para=1, size=size)

    lines = [line("If required, a host may have two separate entries, one for each version of the", 100),
             line("(IPv4 and IPv6).", 125, x1=480.0, size=24.0),
             line("This is useful when DNS is not running, for example during system", 170),
             line("bootup.", 195, x1=400.0, size=25.0),
             line("# The following lines are desirable for IPv4 capable hosts", 240, x1=1000.0)]
    assert render(lines, True) == (
        "If required, a host may have two separate entries, one for each version of the (IPv4 and IPv6).\n\n"
        "This is useful when DNS is not running, for example during system bootup.\n\n"
        "\\# The following lines are desirable for IPv4 capable hosts")


def test_a_line_poking_across_the_gutter_stays_in_its_column():
    """An overfull line of code in the left column runs into the gutter and past it: it is read
    in the left column, not as a title cutting both columns in two (pic.ms set in two columns)."""
    left = [box(100, 100 + i * 30, "left column text line %02d goes on" % i, width=400) for i in range(20)]
    right = [box(560, 100 + i * 30, "right column text line %02d goes on" % i, width=400) for i in range(20)]
    code = box(420, 100 + 10 * 30, "line from 'i'th box.nw to 'i+1'th box.se", width=260)
    left[10] = code
    got = texts(page(left + right, shuffle=3))
    assert got == [b[4] for b in left] + [b[4] for b in right]


def test_a_centred_title_over_both_columns_still_spans_them():
    left = [box(100, 300 + i * 30, "left column text line %02d goes on" % i, width=400) for i in range(10)]
    right = [box(560, 300 + i * 30, "right column text line %02d goes on" % i, width=400) for i in range(10)]
    lower_left = [box(100, 700 + i * 30, "lower left line %02d of the column" % i, width=400) for i in range(5)]
    lower_right = [box(560, 700 + i * 30, "lower right line %02d of the column" % i, width=400) for i in range(5)]
    title = box(380, 640, "A Section Title Set Across The Columns", width=300)
    got = texts(page(left + right + [title] + lower_left + lower_right, shuffle=5))
    assert got == ([b[4] for b in left] + [b[4] for b in right] + [title[4]]
                   + [b[4] for b in lower_left] + [b[4] for b in lower_right])
