"""The interface every search backend implements, and the values that cross it."""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from documents.organise.filters import CustomFieldAsk, CustomFieldCondition
from documents.visibility import Visibility
from search.documents import IndexedDocument
from search.query import ParsedQuery

FACET_FIELDS = ("document_type", "tags", "correspondent", "year")
# Facets show the most common values; a long tail helps nobody choose.
FACET_LIMIT = 20
HIGHLIGHT_START, HIGHLIGHT_END = "<mark>", "</mark>"
# Engines mark matches with these control characters; the markup is made by ``marked``,
# after the text is escaped, so a document's own "<" can never become HTML.
MARK_START, MARK_END = "\x02", "\x03"


def marked(text: str) -> str:
    """Escaped ``text`` with the engine's match markers turned into <mark> tags."""
    return html.escape(text).replace(MARK_START, HIGHLIGHT_START).replace(MARK_END, HIGHLIGHT_END)


@dataclass(frozen=True)
class SearchFilters:
    document_type: str | None = None
    tags: tuple[str, ...] = ()  # all of them
    correspondent: str | None = None
    language: str | None = None
    mime_type: str | None = None
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    tag_tree: int | None = None  # a tag's id: documents with it or a tag nested under it
    custom_field: CustomFieldAsk | None = None  # a custom field's value, range or presence

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> SearchFilters:
        """From checked request parameters or a saved search: blanks mean "any", tags may be
        a comma-separated string or a list, dates a date or its ISO text."""
        tags = values.get("tags") or ()
        if isinstance(tags, str):
            tags = tags.split(",")

        def date(name: str) -> datetime.date | None:
            value = values.get(name)
            return datetime.date.fromisoformat(value) if isinstance(value, str) and value else value or None

        def text(name: str) -> str | None:
            return str(values.get(name) or "").strip() or None

        return cls(
            document_type=text("document_type"),
            tags=tuple(dict.fromkeys(tag.strip() for tag in tags if tag.strip())),
            correspondent=text("correspondent"),
            language=text("language"),
            mime_type=text("mime_type"),
            date_from=date("date_from"),
            date_to=date("date_to"),
            tag_tree=values.get("tag_tree") or None,
            custom_field=CustomFieldAsk.from_query(values),
        )


@dataclass(frozen=True)
class SearchRequest:
    query: ParsedQuery
    # Whose documents may match (documents.visibility); never nothing, the caller stops first.
    visibility: Visibility
    filters: SearchFilters = field(default_factory=SearchFilters)
    page: int = 1
    per_page: int = 20
    # The filters' tag tree and custom field checked against the viewer's entries
    # (search.selectors.search): what the engines apply.
    tag_tree: TagTree | None = None
    custom_field: CustomFieldCondition | None = None
    # The SELECT and BOOLEAN custom fields the viewer may use: each gets a facet.
    facet_fields: tuple[FacetField, ...] = ()


@dataclass(frozen=True)
class TagTree:
    """A tag and the tags nested under it: by id for the database, by name for Meilisearch."""

    ids: tuple[int, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class FacetField:
    """A custom field the search counts the values of."""

    id: int
    name: str
    data_type: str


@dataclass(frozen=True)
class Hit:
    file_id: int
    # Field name -> text with the matches wrapped in <mark>…</mark>, everything else escaped.
    formatted: dict[str, str]


class FacetCount(NamedTuple):
    """One value of a facet and how many of the matches have it."""

    value: str
    matches: int


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    total: int
    # Facet name -> its values, most frequent first.
    facets: dict[str, list[FacetCount]]
    # One per SearchRequest.facet_fields, in their order: how many matches have each value.
    custom_facets: list[CustomFieldFacet] = field(default_factory=list)


@dataclass(frozen=True)
class CustomFieldFacet:
    field: FacetField
    # The field's values ("true"/"false" for a BOOLEAN), most frequent first.
    values: list[FacetCount]


class SearchBackend(Protocol):
    """A search engine. Implementations: database (PostgreSQL, SQLite), Meilisearch."""

    name: str

    def setup(self) -> None:
        """Create or update the index and its settings; idempotent."""

    def index(self, records: Sequence[IndexedDocument]) -> None:
        """Add or replace these documents."""

    def remove(self, file_ids: Sequence[int]) -> None:
        """Remove these documents; ids not in the index are ignored."""

    def search(self, request: SearchRequest) -> SearchPage: ...

    def fingerprints(self) -> dict[int, str]:
        """Every indexed document id with the fingerprint it was indexed at."""
        ...
