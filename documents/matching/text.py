"""The text the classifier reads: bounded, lower-cased, accents folded, numbers collapsed."""

from __future__ import annotations

import re
import unicodedata

# Word n-grams read this much normalised text: letterhead, heading and the body of a letter.
# Beyond it a long document only adds cost, not evidence of who sent it or what it is.
WORD_CHARS = 8_000
# Character n-grams (robust to OCR errors and word forms) read only the top of the page,
# where the letterhead and heading are, which bounds their cost on every document.
CHAR_CHARS = 1_500
# Raw text read before normalising: enough for WORD_CHARS after punctuation folds away,
# and a 10 MB text costs no more than a 32 kB one.
_RAW_CHARS = 4 * WORD_CHARS

_NOT_WORD = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\d+")


def matching_text(text: object) -> str:
    """``text`` as the classifier sees it: "Rechnung Nr. 2024-0815, Müller" -> "rechnung nr 0 0 muller".

    Every run of digits becomes one "0": invoice numbers, amounts and dates differ in every
    document and would otherwise fill the vocabulary with features that never recur.
    Anything but a str (bytes, None) reads as empty.
    """
    if not isinstance(text, str):
        return ""
    folded = unicodedata.normalize("NFKD", text[:_RAW_CHARS].casefold())
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    folded = _DIGITS.sub("0", _NOT_WORD.sub(" ", folded))
    return folded.strip()[:WORD_CHARS]
