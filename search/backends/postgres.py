"""PostgreSQL full text search: a weighted tsvector per document behind a GIN index.

Title weighs most (A), then file name, names and tags (B), document type (C), the text
(D). Text is stemmed in the document's language (German for German documents, English
otherwise); short fields are also indexed unstemmed, so names and odd words match as
typed. A query word matches if any of the English, German or unstemmed forms matches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import reduce

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import Case, F, QuerySet, Value, When

from documents.models import Document
from search.backends.base import MARK_END, MARK_START
from search.backends.database import (
    MAX_INDEXED_TEXT,
    SNIPPET_CHARS,
    names_of,
    words_of_filename,
)
from search.documents import IndexedDocument
from search.query import ParsedQuery, Term

QUERY_CONFIGS = ("english", "german", "simple")
UPDATE_VECTORS = (
    "UPDATE search_searchentry AS entry SET vector = "
    "setweight(to_tsvector(v.config, v.title), 'A') "
    "|| setweight(to_tsvector('simple', v.plain), 'B') "
    "|| setweight(to_tsvector(v.config, v.names), 'B') "
    "|| setweight(to_tsvector(v.config, v.kind), 'C') "
    "|| setweight(to_tsvector(v.config, v.body), 'D')"
)
# Prefixes are not stemmed (a half-typed word has no stem yet).
PREFIX_CONFIGS = ("simple",)


def language_config(language: str) -> str:
    return "german" if language == "de" else "english"


def _variants(term: Term) -> list[SearchQuery]:
    """The forms of ``term`` that count as a match: any one of them."""
    if term.prefix and term.words[0].isalnum():
        variants = [
            SearchQuery(f"{term.words[0]}:*", config=config, search_type="raw") for config in PREFIX_CONFIGS
        ]
        # While typing, the finished word counts too ("invoice" also finds "invoices").
        return variants + [SearchQuery(term.text, config=config) for config in QUERY_CONFIGS]
    search_type = "phrase" if term.is_phrase else "plain"
    return [SearchQuery(term.text, config=config, search_type=search_type) for config in QUERY_CONFIGS]


def _term_query(term: Term) -> SearchQuery:
    return reduce(lambda left, right: left | right, _variants(term))


def _absent(term: Term) -> SearchQuery:
    """None of the forms of ``term`` (a combined query cannot be negated as a whole)."""
    return reduce(lambda left, right: left & right, (~variant for variant in _variants(term)))


def ts_query(terms: Sequence[Term]) -> SearchQuery:
    """All ``terms`` (AND) as one tsquery."""
    return reduce(lambda left, right: left & right, (_term_query(term) for term in terms))


class PostgresDialect:
    def write(self, records: Sequence[IndexedDocument]) -> None:
        """All vectors of the batch in one statement: the text goes in as parameters and
        PostgreSQL builds the vectors where the index lives."""
        rows = []
        for record in records:
            names, tags = names_of(record), " ".join(record.tags)
            filename = words_of_filename(record.filename)
            rows.append(
                (
                    record.file_id,
                    language_config(record.language),
                    record.title,
                    f"{record.title} {filename} {names} {tags}",
                    f"{filename} {names} {tags}",
                    record.document_type,
                    record.text[:MAX_INDEXED_TEXT],
                )
            )
        values = ", ".join(["(%s::integer, %s::regconfig, %s, %s, %s, %s, %s)"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(
                f"{UPDATE_VECTORS} FROM (VALUES {values}) AS v(id, config, title, plain, names, kind, body) "
                "WHERE entry.document_id = v.id",
                [value for row in rows for value in row],
            )

    def delete(self, file_ids: Sequence[int]) -> None:
        """The vector lives in the SearchEntry row, which is already gone."""

    def orphaned_ids(self) -> set[int]:
        return set()  # the vector cannot outlive its entry

    def match(self, documents: QuerySet[Document], query: ParsedQuery) -> QuerySet[Document]:
        if query.required:
            # Exclusions inside the one tsquery (``a & !b``), which the GIN index answers
            # whole; a separate NOT (vector @@ b) reads the vector of every match instead.
            tsquery = ts_query(query.required)
            for term in query.excluded:
                tsquery = tsquery & _absent(term)
            return documents.filter(search_entry__vector=tsquery)
        for term in query.excluded:
            documents = documents.exclude(search_entry__vector=_term_query(term))
        return documents

    @contextmanager
    def counting(self, query: ParsedQuery) -> Iterator[None]:
        """Count words' matches (the total, the facets) from the GIN index alone.

        The vectors are TOASTed (a few KB each) and the planner does not cost reading them
        back: for any word in more than a few percent of the documents it prefers a
        sequential scan that detoasts every vector in the archive (0.5 s per count at
        100,000 documents, bench/search.py) over the index (0.04 s), whose matches a count
        never needs to read. Ranking is left to the planner: it must read the matched
        vectors anyway, and a selective filter on the documents can be the better way in.
        """
        if not query.required:  # nothing for the index to answer
            yield
            return
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Until the end of the transaction: this block's, or the caller's around it.
                cursor.execute("SET LOCAL enable_seqscan = off")
            yield

    def rank(self, documents: QuerySet[Document], query: ParsedQuery) -> QuerySet[Document]:
        if not query.required:
            return documents.order_by("-created_at", "-id")
        rank = SearchRank(F("search_entry__vector"), ts_query(query.required))
        return documents.annotate(rank=rank).order_by("-rank", "-created_at", "-id")

    def highlights(self, file_ids: list[int], query: ParsedQuery) -> dict[int, tuple[str, str]]:
        documents = Document.objects.filter(id__in=file_ids)
        if not query.required:
            rows = documents.values_list("id", "document_title", "ocr_text")
            return {file_id: (title, text[:SNIPPET_CHARS]) for file_id, title, text in rows}
        tsquery = ts_query(query.required)
        # The text is parsed for highlighting in the language it was indexed in.
        config = Case(When(language="de", then=Value("german")), default=Value("english"))
        rows = documents.annotate(
            title_marked=SearchHeadline(
                "document_title",
                tsquery,
                config=config,
                start_sel=MARK_START,
                stop_sel=MARK_END,
                highlight_all=True,
            ),
            text_marked=SearchHeadline(
                "ocr_text",
                tsquery,
                config=config,
                start_sel=MARK_START,
                stop_sel=MARK_END,
                max_fragments=2,
                max_words=24,
                min_words=8,
                fragment_delimiter=" … ",
            ),
        ).values_list("id", "title_marked", "text_marked")
        return {file_id: (title or "", text or "") for file_id, title, text in rows}
