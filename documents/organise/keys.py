"""How names are compared: case, accents, punctuation at the edges and spacing folded.

Extraction finds "MÜLLER GmbH", a person typed "Müller  GmbH", an OCR dropped the dots:
"muller gmbh", one correspondent. The key is stored beside the name (``match_key``) so a
lookup is one indexed equality, and uniqueness per owner holds on it.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s_]+")
_EDGE_PUNCTUATION = " .,;:-\u2013\u2014'\"()[]"
MAX_KEY_LENGTH = 128


def match_key(name: str) -> str:
    """``name`` folded for matching: lower case, no accents, one space between words."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    words = _SEPARATORS.sub(" ", bare).strip(_EDGE_PUNCTUATION)
    return words[:MAX_KEY_LENGTH]


def clean_name(name: str, *, max_length: int = 128) -> str:
    """A list entry's name as shown: control characters out, spacing collapsed, bounded."""
    printable = "".join(char if char.isprintable() else " " for char in name)
    return " ".join(printable.split())[:max_length]
