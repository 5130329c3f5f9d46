"""Text clean-up shared by the rules: bounded size, no control characters, header-sized lines."""

from __future__ import annotations

import re
import unicodedata

# Metadata sits in the first pages; the cap bounds every scan over huge text.
MAX_TEXT_CHARS = 200_000
MAX_LINE_CHARS = 150

CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
SPACES = re.compile(r"[ \t\u00a0\u2007\u202f]+")


def normalise(text: str) -> str:
    """At most MAX_TEXT_CHARS of NFC text with "\\n" line ends and no control characters."""
    text = unicodedata.normalize("NFC", text[:MAX_TEXT_CHARS].replace("\r\n", "\n").replace("\f", "\n"))
    return CONTROL.sub(" ", text.replace("\r", "\n"))


def meaningful_lines(text: str) -> list[str]:
    """Non-empty, single-spaced lines short enough to be headings, addresses or titles."""
    lines = (SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return [line for line in lines if line and len(line) <= MAX_LINE_CHARS]


def line_before(text: str, position: int, limit: int = 80) -> str:
    """Up to ``limit`` characters of the line that ``position`` is on, before it."""
    return text[max(text.rfind("\n", 0, position) + 1, position - limit) : position]


def _fold_table() -> dict[int, str]:
    # Accented Latin letters to their base letter, one character for one, so positions found in
    # folded text hold in the original. OCR drops or swaps French accents ("ECHEANCE",
    # "Lumiére"), so keywords are matched without them.
    table = {ord("\u2019"): "'", ord("\u02bc"): "'"}
    for code in range(0xC0, 0x250):
        base = unicodedata.normalize("NFKD", chr(code))[0]
        if base != chr(code) and base.isascii() and base.isalpha():
            table[code] = base
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Lower-case ``text`` without accents (ä -> a, é -> e), the same length as the original."""
    folded = text.translate(_FOLD).lower()
    if len(folded) != len(text):  # a few letters ("İ") lower-case to two characters: keep those
        folded = "".join(low if len(low := char.lower()) == 1 else char for char in text.translate(_FOLD))
    return folded
