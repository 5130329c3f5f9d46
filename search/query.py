"""What people type into the search box, parsed once for every backend.

The syntax is what search engines taught everyone: words must all occur (AND),
``"an exact phrase"``, ``-word`` or ``-"a phrase"`` excludes, and the last word is a
prefix while it is being typed (no space after it yet), so results appear as you type.
Nothing a user types is an error except a query too long to be a search: unbalanced
quotes close at the end, punctuation is ignored, and a query without words means
"everything that matches the filters".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from docuelevate.errors import InvalidInput

MAX_QUERY_LENGTH = 1000
# Enough for any real search; more terms only make the database work harder.
MAX_TERMS = 32
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Term:
    """A word, or a phrase of several words, to match (or, when ``excluded``, to avoid)."""

    words: tuple[str, ...]
    excluded: bool = False
    prefix: bool = False  # the last word may be the start of a longer word

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True)
class ParsedQuery:
    raw: str
    terms: tuple[Term, ...] = field(default_factory=tuple)

    @property
    def required(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if not term.excluded)

    @property
    def excluded(self) -> tuple[Term, ...]:
        return tuple(term for term in self.terms if term.excluded)

    @property
    def is_empty(self) -> bool:
        return not self.terms


def parse_query(raw: str) -> ParsedQuery:
    """Split ``raw`` into terms; InvalidInput only for an unreasonably long query."""
    if len(raw) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"The search is longer than {MAX_QUERY_LENGTH} characters; shorten it.")
    terms: list[Term] = []
    for match in _TOKEN.finditer(raw):
        phrase_minus, phrase, word_minus, word = match.groups()
        excluded = bool(phrase_minus if phrase is not None else word_minus)
        words = tuple(w.lower() for w in _WORD.findall(phrase if phrase is not None else word))
        if not words:
            continue  # punctuation only
        # A phrase splits into words for the engines (hyphenated names, "e-mail").
        terms.append(Term(words=words, excluded=excluded))
    terms = terms[:MAX_TERMS]
    typing_last_word = raw and not raw[-1].isspace() and not raw.rstrip().endswith('"')
    if typing_last_word and terms and not terms[-1].excluded and not terms[-1].is_phrase:
        terms[-1] = Term(words=terms[-1].words, prefix=True)
    return ParsedQuery(raw=raw, terms=tuple(terms))
