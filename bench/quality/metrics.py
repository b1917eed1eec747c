"""CER and an order-insensitive word F1 on normalised text.

Normalising removes what a text layer and an OCR engine write differently
for the same print: ligatures and compatibility forms (NFKC), typographic
quotes and dashes, bullets, a word hyphenated at a line end (joined: a text
layer may join it, a reader does), and every run of whitespace (line breaks
included, so layout is not counted; reading order is, by CER).
"""

import re
import unicodedata
from collections import Counter
from typing import Dict

_MAP = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "`": "'",
                      "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
                      "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
                      "\u2212": "-", "\u00ad": None, "\u2022": " ", "\u00b7": " ", "\u25cf": " ",
                      "\f": " "})
_SPACE = re.compile(r"\s+")


_HYPHEN_BREAK = re.compile(r"(\w)-[ \t]*\n\s*(\w)")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_MAP)
    return _SPACE.sub(" ", _HYPHEN_BREAK.sub(r"\1\2", text)).strip()


def levenshtein(a: str, b: str) -> int:
    """Edit distance by Myers' bit-parallel algorithm (Hyyrö's form for whole strings):
    one pass over ``b`` with ``a`` as bit vectors, so a page of 4000 characters takes
    milliseconds in plain Python."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    m = len(b)
    mask = (1 << m) - 1
    last = 1 << (m - 1)
    peq: Dict[str, int] = {}
    for i, c in enumerate(b):
        peq[c] = peq.get(c, 0) | (1 << i)
    pv, mv, score = mask, 0, m
    for c in a:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & mask) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & mask
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv
    return score


def errors(truth: str, text: str) -> int:
    return levenshtein(normalise(truth), normalise(text))


def cer(truth: str, text: str) -> float:
    truth = normalise(truth)
    return levenshtein(truth, normalise(text)) / max(1, len(truth))


def word_counts(text: str) -> Counter:
    return Counter(normalise(text).split())


def word_f1(truth: str, text: str) -> float:
    """F1 of the two bags of words: order-insensitive, so it separates misread words from
    words read in the wrong order (which only CER sees)."""
    want, got = word_counts(truth), word_counts(text)
    hit = sum((want & got).values())
    if not hit:
        return 0.0
    precision, recall = hit / sum(got.values()), hit / sum(want.values())
    return 2 * precision * recall / (precision + recall)
