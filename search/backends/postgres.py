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
from django.db.models import Case, F, Q, QuerySet, Value, When

from documents.models import Document
from search.backends.base import MARK_END, MARK_START
from search.backends.database import (
    MAX_INDEXED_TEXT,
    SNIPPET_CHARS,
    names_of,
    words_of_filename,
)
from search.documents import IndexedDocument
from search.models import SearchEntry
from search.query import ParsedQuery, Term

QUERY_CONFIGS = ("english", "german", "simple")
# The head (title A, file name, names and tags B, type C) and the whole vector (the head and
# the text, D) of each row of a batch, computed where the index lives.
UPDATE_VECTORS = """
UPDATE search_searchentry AS entry SET head = computed.head, vector = computed.head || computed.body
FROM (
    SELECT v.id,
        setweight(to_tsvector(v.config, v.title), 'A')
        || setweight(to_tsvector('simple', v.plain), 'B')
        || setweight(to_tsvector(v.config, v.names), 'B')
        || setweight(to_tsvector(v.config, v.kind), 'C') AS head,
        setweight(to_tsvector(v.config, v.body), 'D') AS body
    FROM (VALUES {values}) AS v(id, config, title, plain, names, kind, body)
) AS computed
WHERE entry.document_id = computed.id
"""
# Memory for one search's counting statement (see PostgresDialect.counting); a limit per
# sort or hash, taken only as far as the matches need it.
COUNTING_WORK_MEM = "32MB"
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
    tag_ids_table = "jsonb_array_elements_text(CAST(combination.tag_ids AS jsonb)) AS tag_id(value)"

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
            cursor.execute(UPDATE_VECTORS.format(values=values), [value for row in rows for value in row])

    def delete(self, file_ids: Sequence[int]) -> None:
        """The vector lives in the SearchEntry row, which is already gone."""

    def orphaned_ids(self) -> set[int]:
        return set()  # the vector cannot outlive its entry

    def match(self, entries: QuerySet[SearchEntry], query: ParsedQuery) -> QuerySet[SearchEntry]:
        if query.required:
            # Exclusions inside the one tsquery (``a & !b``), which the GIN index answers
            # whole; a separate NOT (vector @@ b) reads the vector of every match instead.
            tsquery = ts_query(query.required)
            for term in query.excluded:
                tsquery = tsquery & _absent(term)
            return entries.filter(vector=tsquery)
        for term in query.excluded:
            entries = entries.exclude(vector=_term_query(term))
        return entries

    @contextmanager
    def counting(self, query: ParsedQuery) -> Iterator[None]:
        """Find words' matches through the GIN index while counting and paging.

        The vectors are TOASTed (a few KB each) and the planner does not cost reading them
        back: for any word in more than a few percent of the documents it prefers a
        sequential scan that detoasts every vector in the archive (0.5 s at 100,000
        documents, bench/search.py) over the index (0.04 s), which needs to read none.
        For the same reason the newest matches are not found by walking the date index
        and testing each entry's vector (a word that is rare among the newest reads
        thousands of vectors: 0.9 s for ``versicherung -kfz``), but from the GIN bitmap and
        a top-N sort. JIT compiling pays only for long queries; these large-looking ones
        take tens of milliseconds, and compiling them took 50 ms more. The matches are read
        once into memory and counted from there several times: with the default 4 MB they
        went to a temporary file from about 40,000 matches on.
        """
        settings = ["jit = off", f"work_mem = '{COUNTING_WORK_MEM}'"]
        if query.required:  # else nothing for the GIN index to answer
            settings += ["enable_seqscan = off", "enable_indexscan = off"]
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Until the end of the transaction: this block's, or the caller's around it.
                cursor.execute("; ".join(f"SET LOCAL {setting}" for setting in settings))
            yield

    def ranked(self, candidate_ids: Sequence[int], query: ParsedQuery) -> list[int]:
        rank = SearchRank(F("vector"), ts_query(query.required))
        entries = SearchEntry.objects.filter(document_id__in=candidate_ids)
        ordered = entries.annotate(rank=rank).order_by("-rank", "-created_at", "-document_id")
        return list(ordered.values_list("document_id", flat=True))

    def prominent(self, query: ParsedQuery) -> Q:
        # The heads that match come from their own GIN index, once per search; testing each
        # match's head instead cost more than finding the matches (bench/search.py).
        heads = SearchEntry.objects.filter(head=ts_query(query.required)).values("document_id")
        return Q(document_id__in=heads)

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
