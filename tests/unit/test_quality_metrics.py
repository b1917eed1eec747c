"""The real-document benchmark's metrics (bench/quality/metrics.py): the bit-parallel edit
distance against the textbook one, and what normalising forgives and what it does not."""

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.quality.metrics import cer, levenshtein, normalise, word_f1
from support import edit_distance


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abc \u00e9\n", max_size=80), st.text(alphabet="abc \u00e9\n", max_size=80))
def test_bit_parallel_distance_is_the_edit_distance(a, b):
    assert levenshtein(a, b) == edit_distance(a, b) == levenshtein(b, a)


def test_long_pages_and_empty_texts():
    page = "lorem ipsum dolor sit amet " * 200  # wider than any machine word
    assert levenshtein(page, page) == 0
    assert levenshtein(page, page[1:]) == 1
    assert levenshtein(page, "") == levenshtein("", page) == len(page)
    assert cer("", "anything") == 8.0 and cer("", "") == 0.0


def test_layout_is_forgiven_and_order_is_not():
    truth = "The \ufb01rst \u201cword\u201d \u2014 hyphen-\nated,\n\n   spread"
    assert normalise(truth) == 'The first "word" - hyphenated, spread'
    assert cer(truth, 'The first "word" - hyphenated, spread') == 0.0
    swapped = "spread hyphenated, The first \"word\" -"
    assert cer(truth, swapped) > 0.3 and word_f1(truth, swapped) == 1.0
    assert word_f1("a b c d", "a b x") == 2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4)
    assert word_f1("a b", "") == 0.0
