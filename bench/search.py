"""Benchmark: search (``GET /api/search``) on 1,000 and on 100,000 documents (PostgreSQL), in one run.

    .venv/bin/python bench/search.py [--repeat 20] [--small 1000] [--large 100000] [--pages 4]
        [--explain] [--database-url postgresql://postgres@127.0.0.1:5432/docuelevate_searchbench] [--keep]
        [--reuse]
    .venv/bin/python bench/search.py --database-url sqlite:///<folder>   # the embedded default (FTS5)

Creates two throwaway databases, ``<name>_<small>`` and ``<name>_<large>``, seeded as
bench/api.py seeds them (the same documents, metadata, tags, steps and log; the large archive
starts with the documents of the small one), except for the text: each document OCR reached
has 2 to ``--pages`` pages of 2,000-3,000 characters of OCR-like German or English, after its
language and type: a letterhead, reference numbers, dates and amounts, a vocabulary with a
long tail, some English in German letters and a few rare words, so selective searches exist.
Each archive is then indexed through the real code path (``search.services.reindex_all``:
batches of 200, a bulk upsert and one UPDATE building the weighted vectors per batch), timed,
and vacuumed as autovacuum would.

The searches people type (a common word, a rare one, two words, a phrase, an exclusion, a
half-typed word, filters without words, a date range, a deeper page; and some as an owner
with MULTI_USER_ENABLED, where visibility is part of the query) go through the whole Django
stack in-process, with a real API token, to each archive in alternating rounds, so load from
other processes on this shared machine falls on both sizes alike.

Prints p50/p95 per search and over all searches at both sizes, the ratio large / small
(target <= 2: search slows down far less than the archive grows), the queries each search
costs, the index build time per 1,000 documents and the size of the index. ``--explain``
adds, for the searches over the target, where their time goes and PostgreSQL's plans
(EXPLAIN ANALYZE, BUFFERS) of their slowest statements in the large archive. The databases
are dropped at the end unless ``--keep`` is given. ``--reuse`` takes the archives an
earlier ``--keep`` run left (same sizes and URL) instead of seeding them: migrated to this
code, their search index rebuilt from nothing (so the build is timed as in a fresh run), and
kept again. With ``--reuse --no-reindex`` the index stays as it is, and only the searches are
timed: a change to the search measured before and after on the very same archives.

``--database-url sqlite:///<folder>`` runs the same on SQLite (FTS5): one database file per
size in that folder, as bench/api.py makes them; the application's rate limit is off for the
benchmark's own requests there too (bench/api.py's setup).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import urlsplit

import api  # bench/api.py: throwaway databases, Django set-up, the seeded archive, percentiles

if TYPE_CHECKING:
    from django.test import Client


DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/docuelevate_searchbench"
TARGET_RATIO = 2.0
PER_PAGE = 20
MIN_PAGES = 2
PAGE_CHARS = (2000, 3000)
WORDS_PER_LINE = 10
NUMBER_SHARE = 0.04  # of the words on a page: amounts, dates, reference numbers
OTHER_LANGUAGE_SHARE = 0.05  # English in German letters and the other way round
TOPIC_SHARE = 0.08  # of the words on a page: the words of the document's type
TAIL_WORDS = 4000  # made-up words per language: names, products, OCR misreadings
TAIL_SHARE = 0.05

# --- What the documents say ------------------------------------------------------------------

# Most frequent first: the weights fall with the rank (Zipf), as in real text.
GERMAN = (
    "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an "
    "werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum "
    "war haben nur oder aber vor zur bis mehr durch man sein wurde sei Sie Ihr Ihre Ihnen wir uns "
    "unsere bitte gemäß sowie jedoch bereits innerhalb ab vom pro je Nr Datum Seite Betrag Euro EUR "
    "Monat Jahr Kunde Kundennummer Anschrift Straße Telefon Fax E-Mail Ansprechpartner Zeitraum "
    "Vertrag Leistung Zahlung Konto IBAN BIC Bank Summe Gesamt netto brutto MwSt Steuer Frist Termin "
    "Anlage Unterlagen Angaben Informationen Hinweis Hinweise Änderung Änderungen Fragen Verfügung "
    "Sehr geehrte geehrter Damen Herren Frau Herr freundlichen Grüßen Mit Vielen Dank Team "
    "Kundenservice Postfach Geschäftsführer Amtsgericht Sitz Registergericht HRB USt-IdNr "
    "Steuernummer bezahlt überwiesen fällig erhalten beträgt erfolgt gilt finden senden melden "
    "wenden beachten berechnet angegeben vereinbart bestätigen mitteilen Beginn Ende neue neuen "
    "alten laufenden folgenden genannten entsprechend insgesamt monatlich jährlich zuzüglich "
    "abzüglich einschließlich Abschlag Guthaben Nachzahlung Erstattung Kündigung Versicherung "
    "Beitrag Rechnung Auftrag Bestellung Lieferung Preis Kosten Gebühr Gebühren Antrag Bescheid "
    "Nachweis Bescheinigung Erklärung Unterschrift Ort Vertragsnummer Mitgliedsnummer Wohnung "
    "Adresse Kontoinhaber Lastschrift Überweisung Mandatsreferenz Gläubiger-ID Rückfragen online "
    "Kundenportal Service Zustellung Widerruf Datenschutz Bedingungen Allgemeine AGB Ziffer Absatz "
    "Grundlage Höhe Zeit Tage Wochen sofort spätestens künftig weiterhin zusätzlich möglich "
    "erforderlich gültig vollständig Fristablauf Mahnung Zahlungserinnerung Verzug"
)
ENGLISH = (
    "the of and to a in for is on that by this with you it not or be are from at as your have an "
    "we our will can if please any all has may been more no its which must should other such date "
    "page amount total due account customer number payment reference period service terms "
    "conditions information details questions contact us address phone email online thanks "
    "sincerely regards dear Mr Ms team support office Ltd Inc company limited registered VAT tax "
    "net gross balance charge charges fee fees paid received following above below new current "
    "previous monthly annual including excluding within days notice agreement policy statement "
    "order request confirm confirmation attached enclosed note kindly review update changes "
    "effective subject applicable provided described section clause valid required possible "
    "additional further customer-service portal privacy delivery shipping item items subtotal "
    "reminder overdue settlement direct debit transfer bank sort code"
)
# German compounds: the long tail real letters are full of, built from parts.
COMPOUND_HEADS = (
    "Haus Strom Kranken Kfz Miet Steuer Lohn Bank Konto Vertrags Kunden Zahlungs Liefer Versicherungs "
    "Bau Wasser Heiz Auto Reise Arbeits Renten Kinder Zahn Garten Energie Gas Telefon Internet Bahn "
    "Flug Mitglieds Service Abfall Grund Neben Jahres Monats Sonder Schaden"
)
COMPOUND_TAILS = (
    "vertrag nummer betrag kosten gebühr abrechnung bescheinigung erklärung bescheid versicherung "
    "konto frist zeitraum stand beitrag leistung anschrift schein pauschale zuschlag übersicht "
    "änderung bestätigung antrag vollmacht mitteilung"
)
# Document type (bench/api.py's) -> the words its pages use most, in German and in English.
TOPICS: dict[str, tuple[str, str]] = {
    "Invoice": (
        "Rechnung Rechnungsnummer Rechnungsbetrag Rechnungsdatum Position Menge Einzelpreis "
        "Gesamtpreis Lieferung Zahlungsziel Leistungsdatum Artikel Stück",
        "invoice invoice number item quantity unit price delivery payment due subtotal shipping",
    ),
    "Receipt": (
        "Kassenbon Quittung Beleg bar Karte Rückgeld Filiale Kasse Summe Rechnung Umtausch",
        "receipt cash card change store till purchase total return",
    ),
    "Letter": (
        "Schreiben Anliegen Rückfragen Termin Schreiben Angelegenheit Mitteilung Rechnung beiliegend",
        "letter regarding request appointment matter enclosed reply",
    ),
    "Bank statement": (
        "Kontoauszug Saldo Gutschrift Lastschrift Buchung Valuta Buchungstag Verwendungszweck Dispo",
        "statement balance credit debit transaction value date overdraft",
    ),
    "Payslip": (
        "Gehaltsabrechnung Brutto Netto Lohnsteuer Solidaritätszuschlag Kirchensteuer "
        "Rentenversicherung Arbeitslosenversicherung Pflegeversicherung Auszahlung Steuerklasse",
        "payslip gross net income tax pension national insurance salary deductions",
    ),
    "Insurance policy": (
        "Versicherungsschein Police Versicherungsnehmer Versicherung Deckung Selbstbeteiligung Kfz "
        "Kfz-Versicherung Haftpflicht Kasko Schadenfall Beitrag Kündigung",
        "policy insured premium coverage deductible claim liability vehicle renewal",
    ),
    "Utility bill": (
        "Verbrauch Zählerstand kWh Abschlag Grundpreis Arbeitspreis Strom Zählernummer "
        "Jahresabrechnung Rechnung Tarif Messstelle",
        "meter consumption kWh tariff standing charge electricity gas usage",
    ),
    "Contract": (
        "Vertrag Laufzeit Kündigungsfrist Vertragspartner Paragraph Vereinbarung Kündigung "
        "Vertragsbeginn Verlängerung Unterschrift Vertragsbedingungen",
        "agreement contract term termination party clause renewal signature",
    ),
    "Tax assessment": (
        "Steuerbescheid Finanzamt Einkommensteuer Festsetzung Erstattung Veranlagung Werbungskosten "
        "Sonderausgaben Einspruch Steuer-ID",
        "tax assessment refund taxable income allowance appeal",
    ),
    "Medical report": (
        "Befund Diagnose Patient Patientin Behandlung Therapie Untersuchung Praxis Überweisung Labor",
        "diagnosis patient treatment therapy examination practice referral laboratory",
    ),
}
# Words in few documents (share of the documents in that language), so selective searches exist.
RARE_WORDS = {
    "de": {"Wärmepumpe": 0.01, "Photovoltaikanlage": 0.005, "Elternzeit": 0.005, "Schornsteinfeger": 0.003},
    "en": {"heatpump": 0.01, "mortgage": 0.005, "warranty": 0.005},
}
SURNAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
    "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann",
]  # fmt: skip
CITIES = [
    "Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Düsseldorf", "Leipzig", "Dortmund",
    "Essen", "Bremen", "Dresden", "Hannover", "Nürnberg", "Bochum", "Bonn", "Münster", "Mannheim", "Freising",
]  # fmt: skip
STREETS = [
    "Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Goethestraße", "Lindenallee", "Am Markt",
]  # fmt: skip


@dataclass(frozen=True)
class Pool:
    """Words to draw pages from; cumulative weights make each draw a bisection."""

    words: list[str]
    cum_weights: list[float]
    chars_per_word: float  # with the space after it


def zipf(count: int, share: float) -> list[float]:
    """Weights for ``count`` words by rank that add up to ``share``."""
    weights = [1 / (rank + 2.7) for rank in range(count)]
    total = sum(weights)
    return [share * weight / total for weight in weights]


def made_up_words(rng: random.Random, count: int, *, capitalized: bool) -> list[str]:
    onsets = ["b", "br", "d", "f", "g", "h", "k", "kl", "l", "m", "n", "p", "pf", "r", "s", "sch", "st", "w"]
    vowels = ["a", "e", "i", "o", "u", "ä", "ö", "ü", "ei", "au", "ie"]
    codas = ["", "n", "r", "l", "s", "t", "ng", "ck", "nd", "rt"]
    words: set[str] = set()
    while len(words) < count:
        word = "".join(
            rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(rng.randint(2, 4))
        )
        words.add(word.capitalize() if capitalized else word)
    return sorted(words)


class TextWriter:
    """OCR-like pages in the document's language, drawn from one pool per language and type."""

    def __init__(self) -> None:
        rng = random.Random(api.SEED)  # noqa: S311 - test data, not secrets
        compounds = [head + tail for head in COMPOUND_HEADS.split() for tail in COMPOUND_TAILS.split()]
        rng.shuffle(compounds)  # so no one head is the most frequent
        common = {"de": GERMAN.split() + compounds, "en": ENGLISH.split()}
        tail = {
            "de": made_up_words(rng, TAIL_WORDS, capitalized=True),
            "en": made_up_words(rng, TAIL_WORDS, capitalized=False),
        }
        self.pools: dict[tuple[str, str], Pool] = {}
        for language, other in (("de", "en"), ("en", "de")):
            for document_type in ["", *TOPICS]:
                topic = TOPICS[document_type][0 if language == "de" else 1].split() if document_type else []
                words = common[language] + tail[language] + common[other] + topic
                own_share = 1 - TAIL_SHARE - OTHER_LANGUAGE_SHARE - (TOPIC_SHARE if topic else 0)
                weights = zipf(len(common[language]), own_share) + zipf(len(tail[language]), TAIL_SHARE)
                weights += zipf(len(common[other]), OTHER_LANGUAGE_SHARE)
                weights += [TOPIC_SHARE / len(topic) for _ in topic]
                self.pools[language, document_type] = Pool(
                    words=words,
                    cum_weights=list(itertools.accumulate(weights)),
                    chars_per_word=sum(w * (len(word) + 1) for w, word in zip(weights, words, strict=True)),
                )

    def text(self, rng: random.Random, planned: api.Planned, *, pages: int) -> str:
        document = planned.document
        language = "en" if document.language == "en" else "de"
        pool = self.pools[language, planned.document_type if planned.document_type in TOPICS else ""]
        texts = [self.page(rng, pool, language) for _ in range(pages)]
        texts[0] = self.letterhead(rng, planned, language) + texts[0]
        for word, share in RARE_WORDS[language].items():
            if rng.random() < share:
                page = rng.randrange(pages)
                cut = rng.randrange(len(texts[page]))
                cut = texts[page].find(" ", cut) + 1  # between two words (0 = at the start)
                texts[page] = f"{texts[page][:cut]}{word} {texts[page][cut:]}"
        return "\n\f".join(texts)  # ocrmypdf's sidecar separates pages with form feeds

    def page(self, rng: random.Random, pool: Pool, language: str) -> str:
        count = round(rng.randint(*PAGE_CHARS) / pool.chars_per_word)
        words = rng.choices(pool.words, cum_weights=pool.cum_weights, k=count)
        for _ in range(round(count * NUMBER_SHARE)):
            words[rng.randrange(count)] = self.number(rng, language)
        return "\n".join(" ".join(words[i : i + WORDS_PER_LINE]) for i in range(0, count, WORDS_PER_LINE))

    @staticmethod
    def number(rng: random.Random, language: str) -> str:
        kind = rng.random()
        if kind < 0.4:
            amount = f"{rng.lognormvariate(4, 1.5):,.2f}"
            return amount.translate(str.maketrans(",.", ".,")) if language == "de" else amount
        if kind < 0.7:
            day = api.CREATED_FROM.date() + timedelta(days=rng.randrange(2400))
            return f"{day:%d.%m.%Y}" if language == "de" else f"{day:%Y-%m-%d}"
        if kind < 0.85:
            return f"{rng.choice(['RE', 'KD', 'VN', 'AZ'])}-{rng.randrange(10**7):07d}"
        return str(rng.randint(1, 9999))

    @staticmethod
    def letterhead(rng: random.Random, planned: api.Planned, language: str) -> str:
        document = planned.document
        day = document.document_date or document.created_at.date()
        when = f"{rng.choice(CITIES)}, {day:%d.%m.%Y}" if language == "de" else f"{day:%d %B %Y}"
        reference = "Unser Zeichen" if language == "de" else "Our reference"
        return (
            f"{planned.correspondent}\n{rng.choice(STREETS)} {rng.randint(1, 180)}\n"
            f"{rng.randint(10000, 99999)} {rng.choice(CITIES)}\n\n"
            f"{rng.choice(['Frau', 'Herrn'] if language == 'de' else ['Ms', 'Mr'])} "
            f"{rng.choice(SURNAMES)}\n\n{when}\n{reference}: {rng.randrange(10**6):06d}\n\n"
        )


@dataclass
class SearchArchive(api.Archive):
    """bench/api.py's archive with the text a search works on: a few full pages per document."""

    max_pages: int = 4
    writer: TextWriter = field(default_factory=TextWriter)

    def plan(self) -> api.Planned:
        planned = super().plan()
        document = planned.document
        if document.ocr_text:  # the documents OCR reached
            document.page_count = self.rng.randint(min(MIN_PAGES, self.max_pages), self.max_pages)
            document.ocr_text = self.writer.text(self.rng, planned, pages=document.page_count)
        return planned


def prepare(base_url: str, names: dict[int, str], max_pages: int) -> tuple[str, dict[int, float]]:
    """bench/api.py's databases and seeding, with this archive's text."""
    # api.seed makes its Archive by name; ours differs only in the text.
    with mock.patch.object(api, "Archive", partial(SearchArchive, max_pages=max_pages)):
        return api.prepare(base_url, names)


def reuse(names: dict[int, str], *, reindex: bool) -> str:
    """The archives a ``--keep`` run left, migrated to this code (on PostgreSQL their search
    entries emptied when ``reindex``, so build_index makes the table as a fresh run does),
    with a new API token of the bench user, the same token row in each (the raw token was
    shown once, to that run)."""
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import ApiToken, User
    from accounts.services import token_create

    for name in names.values():
        api.use_database(name)
        call_command("migrate", verbosity=0)
        if reindex and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE search_searchentry")
    small, *others = names
    api.use_database(names[small])
    token, raw_token = token_create(user=User.objects.get(username="bench"), name=f"bench {time.time():.0f}")
    for size in others:
        api.use_database(names[size])
        ApiToken.objects.create(
            owner=User.objects.get(username="bench"),
            name=token.name,
            token_prefix=token.token_prefix,
            token_hash=token.token_hash,
        )
    api.use_database(names[small])
    api.resolve_entry_ids()
    return raw_token


# --- Indexing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """One archive's search index: what went in, how long it took, how big it is."""

    documents: int
    seconds: float
    index_bytes: int  # the GIN index on the vectors (SQLite: the FTS5 tables)
    table_bytes: int  # the entries with their vectors (TOAST included)

    @property
    def seconds_per_1000(self) -> float:
        return self.seconds / self.documents * 1000


def build_index() -> Built:
    """Index every searchable document through the real path, then vacuum and measure."""
    from django.db import connection

    from search.services import reindex_all

    drift = logging.getLogger("search.services")
    level = drift.level
    drift.setLevel(logging.ERROR)  # every document is "missing" from a new index: no news
    try:
        started = time.perf_counter()
        reindex_all()
        seconds = time.perf_counter() - started
    finally:
        drift.setLevel(level)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # Fresh planner statistics and the FTS5 segments merged, as a quiet night would.
            cursor.execute("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
            cursor.execute("ANALYZE")
            cursor.execute(
                "SELECT count(*), (SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'search_fts%'), "
                "(SELECT SUM(pgsize) FROM dbstat WHERE name = 'search_searchentry') FROM search_searchentry"
            )
            row = cursor.fetchone()
            assert row is not None
            return Built(documents=row[0], seconds=seconds, index_bytes=row[1] or 0, table_bytes=row[2] or 0)
        # What autovacuum does soon after a rebuild: the GIN pending list merged into the
        # index, the old row versions of the UPDATE gone, fresh planner statistics.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "SELECT count(*), pg_relation_size('search_entry_vector_gin'), "
            "pg_table_size('search_searchentry') FROM search_searchentry"
        )
        row = cursor.fetchone()
    assert row is not None
    documents, index_bytes, table_bytes = row
    return Built(documents=documents, seconds=seconds, index_bytes=index_bytes, table_bytes=table_bytes)


# --- What is asked ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    label: str
    params: dict[str, str]
    multi_user: bool = False  # as an owner who sees only their own documents


# As typed into the search box: without a space after it the last word is still being typed
# and matches as a prefix too (search.query), as it does when the page submits the box.
SEARCHES = [
    Search("common word: rechnung", {"q": "rechnung"}),
    Search("rare word: wärmepumpe", {"q": "wärmepumpe"}),
    Search("two words: vertrag kündigung", {"q": "vertrag kündigung"}),
    Search('phrase: "stadtwerke münchen"', {"q": '"stadtwerke münchen"'}),
    Search("exclusion: versicherung -kfz", {"q": "versicherung -kfz"}),
    Search("typing: rechn", {"q": "rechn"}),
    Search("english: invoice", {"q": "invoice"}),
    Search("no words, tags=invoice", {"tags": "invoice"}),
    Search("no words, type=Contract", {"document_type": "Contract"}),
    Search(
        "rechnung, 2023-01-01..06-30", {"q": "rechnung", "date_from": "2023-01-01", "date_to": "2023-06-30"}
    ),
    Search("rechnung, page 5", {"q": "rechnung", "page": "5"}),
    Search("multi-user: rechnung", {"q": "rechnung"}, multi_user=True),
    Search("multi-user: wärmepumpe", {"q": "wärmepumpe"}, multi_user=True),
    Search("multi-user: tags=invoice", {"tags": "invoice"}, multi_user=True),
]


# --- Measuring -------------------------------------------------------------------------------


@dataclass
class Measured(api.Results):
    # size -> search -> seconds per statement, from one run with the statements recorded
    statement_seconds: dict[int, dict[str, list[float]]] = field(default_factory=dict)


@contextmanager
def settings_for(search: Search) -> Iterator[None]:
    from django.test import override_settings

    with override_settings(MULTI_USER_ENABLED=search.multi_user):
        yield


def ask(client: Client, search: Search) -> dict[str, Any]:
    """One page of results."""
    return api.get_json(client, "/api/search", {"per_page": str(PER_PAGE), **search.params})


def measure(raw_token: str, names: dict[int, str], repeat: int) -> Measured:
    """Warms up and records the statements of every search in each archive, then times
    ``repeat`` rounds of all searches, switching archives between rounds."""
    from django.test import Client

    client = Client(SERVER_NAME="localhost", headers={"Authorization": f"Bearer {raw_token}"})
    results = Measured(timings={}, queries={}, sql={}, totals={})
    for size, name in names.items():
        api.use_database(name)
        results.timings[size] = {search.label: [] for search in SEARCHES}
        results.queries[size], results.sql[size], results.totals[size] = {}, {}, {}
        results.statement_seconds[size] = {}
        for search in SEARCHES:
            with settings_for(search):
                results.totals[size][search.label] = ask(client, search)["total"]  # warm-up
                queries = api.fewest_queries(partial(ask, client, search))
            results.queries[size][search.label] = len(queries)
            results.sql[size][search.label] = [query["sql"] for query in queries]
            results.statement_seconds[size][search.label] = [float(query["time"]) for query in queries]
    sizes = list(names)
    for round_number in range(repeat):
        for size in sizes if round_number % 2 == 0 else reversed(sizes):
            api.use_database(names[size])
            ask(client, SEARCHES[1])  # connects, outside the clock
            for search in SEARCHES:
                with settings_for(search):
                    started = time.perf_counter()
                    ask(client, search)
                    results.timings[size][search.label].append(time.perf_counter() - started)
    return results


# --- Reporting -------------------------------------------------------------------------------


def megabytes(count: int) -> str:
    return f"{count / 1024 / 1024:,.1f} MB"


def server() -> str:
    """The PostgreSQL the figures are from, with the settings that shape them most."""
    from django.db import connection

    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (FTS5), {os.cpu_count()} CPUs"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'), "
            "current_setting('work_mem'), current_setting('max_parallel_workers_per_gather')"
        )
        version, shared_buffers, work_mem, workers = cursor.fetchone() or ("?",) * 4
    return (
        f"PostgreSQL {version}, shared_buffers {shared_buffers}, work_mem {work_mem}, "
        f"{workers} parallel workers per query, {os.cpu_count()} CPUs"
    )


def report(
    results: Measured, seeded: dict[int, float], built: dict[int, Built], repeat: int, about: str
) -> list[str]:
    """Prints the figures; returns the searches over the target."""
    small, large = min(results.timings), max(results.timings)
    ms = 1000
    print(f"\n{about}")
    if seeded:
        print(f"seeded {small:,} documents in {seeded[small]:.1f} s, {large:,} in {seeded[large]:.1f} s")
    else:
        print(f"the archives of {small:,} and {large:,} documents of an earlier --keep run (--reuse)")
    if built:
        print("index build (search.services.reindex_all), then VACUUM ANALYZE (SQLite: optimize, ANALYZE):")
    for size in (small, large) if built else ():
        index = built[size]
        print(
            f"  {size:>8,} documents, {index.documents:>7,} searchable: {index.seconds:7.1f} s, "
            f"{index.seconds_per_1000:5.2f} s per 1,000 documents; "
            f"full-text index {megabytes(index.index_bytes)}, "
            f"entries {megabytes(index.table_bytes)}"
        )
    if built:
        print(
            f"  build time per document, {large:,} / {small:,}: "
            f"{built[large].seconds_per_1000 / built[small].seconds_per_1000:.2f}"
        )
    print(f"\nGET /api/search?per_page={PER_PAGE}&..., {repeat} rounds alternating the sizes, times in ms\n")
    print(f"{'':<50}{small:>7,} docs  {large:>8,} docs")
    print(
        f"{'search':<34}{'found':>16}  {'p50':>6}{'p95':>7}  {'p50':>7}{'p95':>7}"
        f"  {'ratio p50':>9}{'p95':>6}  queries"
    )
    over, ratios = [], []
    for search in SEARCHES:
        label = search.label
        a, b = results.timings[small][label], results.timings[large][label]
        p50 = statistics.median(b) / statistics.median(a)
        p95 = api.percentile(b, 0.95) / api.percentile(a, 0.95)
        ratios.append(p50)
        if p50 > TARGET_RATIO:
            over.append(label)
        found = f"{results.totals[small][label]:,}/{results.totals[large][label]:,}"
        print(
            f"{label:<34}{found:>16}  {statistics.median(a) * ms:6.1f}{api.percentile(a, 0.95) * ms:7.1f}"
            f"  {statistics.median(b) * ms:7.1f}{api.percentile(b, 0.95) * ms:7.1f}"
            f"  {p50:9.2f}{p95:6.2f}  {results.queries[small][label]}/{results.queries[large][label]}"
            f"{'  over target' if p50 > TARGET_RATIO else ''}"
        )
    every = {size: [t for times in results.timings[size].values() for t in times] for size in results.timings}
    p50s = {size: statistics.median(every[size]) for size in every}
    p95s = {size: api.percentile(every[size], 0.95) for size in every}
    print(
        f"{'all searches':<34}{'':>16}  {p50s[small] * ms:6.1f}{p95s[small] * ms:7.1f}"
        f"  {p50s[large] * ms:7.1f}{p95s[large] * ms:7.1f}"
        f"  {p50s[large] / p50s[small]:9.2f}{p95s[large] / p95s[small]:6.2f}"
    )
    print(f"\n{large:,} docs: p50 {p50s[large] * ms:.1f} ms, p95 {p95s[large] * ms:.1f} ms")
    print(f"{small:,} docs: p50 {p50s[small] * ms:.1f} ms, p95 {p95s[small] * ms:.1f} ms")
    print(f"ratio p50 {large:,} / {small:,}: {p50s[large] / p50s[small]:.2f}  (target <= {TARGET_RATIO})")
    print(f"ratio p95 {large:,} / {small:,}: {p95s[large] / p95s[small]:.2f}  (target <= {TARGET_RATIO})")
    geometric = math.exp(statistics.fmean(math.log(ratio) for ratio in ratios))
    print(f"ratio p50 per search, geometric mean: {geometric:.2f}, worst: {max(ratios):.2f}")
    same = all(results.queries[small][s.label] == results.queries[large][s.label] for s in SEARCHES)
    counts = {count for size in results.queries for count in results.queries[size].values()}
    print(
        f"queries per search: {'/'.join(map(str, sorted(counts)))}, "
        + ("the same at both sizes" if same else "NOT the same at both sizes")
    )
    if over:
        print(f"over the target (p50 ratio > {TARGET_RATIO}): {', '.join(over)}")
    return over


def where_time_goes(results: Measured, size: int, labels: list[str]) -> Measured:
    """Prints the statements of each search, slowest first, from the run that recorded
    them; returns ``results`` with only those taking a fifth of their search or more."""
    slowest = Measured(timings={}, queries={}, sql={size: {}}, totals={})
    for label in labels:
        statements = sorted(
            zip(results.statement_seconds[size][label], results.sql[size][label], strict=True), reverse=True
        )
        total = sum(seconds for seconds, _ in statements)
        print(f"\n{label} ({size:,} documents): {total * 1000:.1f} ms in {len(statements)} statements")
        for seconds, statement in statements:
            print(f"  {seconds * 1000:8.1f} ms  {statement[:150]}")
        slowest.sql[size][label] = [statement for seconds, statement in statements if seconds >= total / 5]
    return slowest


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed rounds per size (default 20)")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=4, help=f"most pages per document (from {MIN_PAGES})")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--explain", action="store_true", help="plans of the searches over the target")
    parser.add_argument("--keep", action="store_true", help="keep the databases (to EXPLAIN by hand)")
    parser.add_argument(
        "--reuse", action="store_true", help="the databases a --keep run left, not seeded (kept)"
    )
    parser.add_argument(
        "--no-reindex", action="store_true", help="with --reuse: time the searches on the index as it is"
    )
    args = parser.parse_args()
    if not 0 < args.small < args.large or args.repeat < 1 or args.pages < 1:
        raise SystemExit("need 0 < --small < --large, --repeat >= 1 and --pages >= 1")

    sqlite = api.is_sqlite(args.database_url)
    sizes = (args.small, args.large)
    args.keep = args.keep or args.reuse
    if sqlite:
        folder = args.database_url.removeprefix("sqlite:///") or "."
        names = {size: str(Path(folder).resolve() / f"docuelevate_bench_{size}.sqlite3") for size in sizes}
        if not args.reuse:
            names = api.sqlite_files(folder, sizes)
        drop = []
    else:
        base = urlsplit(args.database_url).path.lstrip("/") or "docuelevate_searchbench"
        names = {size: f"{base}_{size}" for size in sizes}
        drop = [api.drop_database(name) for name in names.values()]
        if not args.reuse:
            api.admin_execute(args.database_url, *drop, api.create_database(names[args.small]))
    # The built-in search, one shared archive; the multi-user searches switch it on themselves.
    os.environ.update({"AUTH_ENABLED": "true", "MULTI_USER_ENABLED": "false"})
    os.environ.pop("MEILISEARCH_URL", None)
    django_ready = False
    try:
        with tempfile.TemporaryDirectory(prefix="bench-search-") as workdir:
            api.setup_django(args.database_url, names[args.small], Path(workdir))
            django_ready = True
            seeded: dict[int, float] = {}
            built: dict[int, Built] = {}
            if args.reuse:
                raw_token = reuse(names, reindex=not args.no_reindex)
            else:
                raw_token, seeded = prepare(args.database_url, names, args.pages)
            if not (args.reuse and args.no_reindex):
                for size, name in names.items():
                    api.use_database(name)
                    built[size] = build_index()
            results = measure(raw_token, names, args.repeat)
            over = report(results, seeded, built, args.repeat, server())
            if args.explain and over and not sqlite:
                print(f"\nwhere the time goes, and the plans of the slowest statements ({args.large:,}):")
                api.explain(names, args.large, over, where_time_goes(results, args.large, over))
    finally:
        if django_ready:
            from django.db import connections

            connections.close_all()
        if args.keep or args.reuse:
            print(f"\nkept: {', '.join(names.values())}")
        elif sqlite:
            for name in names.values():
                Path(name).unlink(missing_ok=True)
        else:
            api.admin_execute(args.database_url, *drop)


if __name__ == "__main__":
    main()
