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
