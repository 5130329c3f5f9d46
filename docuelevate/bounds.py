"""Bounds of the integers clients send: page numbers and ids.

The databases hold 64-bit integers, and a larger number in a query is an error there
(SQLite raises OverflowError, PostgreSQL refuses an OFFSET beyond bigint), which a client
must never turn into a 500. So every number from a request is checked here, or against
these bounds by a serializer or form field, before it reaches a query: in the API an
out-of-range number is a 400, an id that cannot exist is not found, and a list of ids
simply leaves it out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import islice

from django.urls import register_converter
from django.urls.converters import get_converters

# The largest primary key there can be: BigAutoField is a signed 64-bit integer in
# PostgreSQL and SQLite alike. A larger id names nothing.
MAX_ID = 2**63 - 1
# The last page a list or a search answers. (page - 1) * per_page must stay a 64-bit OFFSET
# for every page size offered (at most 200); a billion pages is beyond any archive.
MAX_PAGE = 1_000_000_000

# ASCII digits only: str.isdigit() also accepts "²", which int() then refuses.
_ID = re.compile(r"[0-9]{1,19}")


def parse_id(text: str) -> int | None:
    """``text`` as a row id, or None when it cannot be one (not a number, or beyond MAX_ID)."""
    text = text.strip()
    if not _ID.fullmatch(text):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


def parse_ids(values: Iterable[str], *, limit: int) -> list[int]:
    """The first ``limit`` of ``values`` that can be row ids; the others name nothing and are
    left out, as ids of documents the user may not see are."""
    ids = (parse_id(value) for value in values)
    return list(islice((number for number in ids if number is not None), limit))


class IdConverter:
    """``<id:name>`` in a route: a row id, like ``<int:name>`` but never beyond MAX_ID, so a
    longer number does not match the route (404) instead of reaching a query."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError("beyond any id")  # Django's signal for "this route does not match"
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


def register_id_converter() -> None:
    """Make ``<id:…>`` known; each URL module that uses it calls this first (idempotent)."""
    if "id" not in get_converters():
        register_converter(IdConverter, "id")
