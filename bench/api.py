"""Benchmark: ``GET /api/files`` on 1,000 and on 100,000 documents (PostgreSQL), in one run.

    .venv/bin/python bench/api.py [--repeat 20] [--small 1000] [--large 100000] [--explain]
        [--database-url postgresql://postgres@127.0.0.1:5432/docuelevate_bench] [--keep]

Creates two throwaway databases, ``<name>_<small>`` and ``<name>_<large>``, and seeds them
in bulk with documents of a realistic shape: tags, five pipeline steps and a processing
log each, mixed statuses and file types, OCR text, creation dates across six years. The
large archive starts with the very documents of the small one. The same list requests
(pages, filters, sorts, a search) then go through the whole Django stack in-process, with
a real API token, to each archive in alternating rounds, so load from other processes on
this shared machine falls on both sizes alike.

Prints p50/p95 per request and over all requests for both sizes, the ratio large / small
(target <= 1.5: the list does not slow down as the archive grows) and the queries each
request costs, which must be the same at both sizes. ``--explain`` adds PostgreSQL's plans
(EXPLAIN ANALYZE) in the large archive for the requests over the target. The databases
are dropped at the end unless ``--keep`` is given.

Some documents carry custom field values (a monetary "Total" on invoices, receipts and
utility bills, a "Status" select on invoices) and the tags are nested ("money" holds
"finance", which holds "invoice", "receipt" and "utilities"; "bank", "payslip" and "tax"
are under "money" too), so the custom field filters and the tag tree filter are timed
like the rest.

``--database-url sqlite:///<folder>`` runs the same on SQLite: one database file per size
in that folder, the large one a copy of the migrated, empty small one.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from django.test import Client

    from documents.models import Document

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/docuelevate_bench"
TARGET_RATIO = 1.5
PER_PAGE = 50
BATCH = 2000  # documents per bulk insert (and transaction)
SEED = 20240312  # one seed: both archives get the same first documents

# --- What the archive holds ------------------------------------------------------------------

# Document type -> (its tag, how common it is).
DOCUMENT_TYPES = {
    "Invoice": ("invoice", 20),
    "Receipt": ("receipt", 12),
    "Letter": ("letter", 14),
    "Bank statement": ("bank", 12),
    "Payslip": ("payslip", 10),
    "Insurance policy": ("insurance", 8),
    "Utility bill": ("utilities", 8),
    "Contract": ("contract", 6),
    "Tax assessment": ("tax", 5),
    "Medical report": ("medical", 5),
}
SPHERE_TAGS = {"private": 60, "business": 30, "": 10}  # most archives split these two
TOPIC_TAGS = ["household", "car", "work", "kids", "health", "travel", "important", "todo", "archive"]
CORRESPONDENTS = [
    "ACME GmbH", "Stadtwerke München", "Stadtwerke Köln", "Stadtwerke Bonn", "Deutsche Bank",
    "Sparkasse Hannover", "Allianz Versicherung", "HUK-Coburg", "Finanzamt Berlin-Mitte",
    "Telekom Deutschland", "Vodafone GmbH", "Amazon EU S.à r.l.", "IKEA Deutschland", "MediaMarkt",
    "Dr. med. Weber", "Techniker Krankenkasse", "AOK Bayern", "Vermieter Schulz", "Hausverwaltung Krause",
    "ADAC e.V.", "Deutsche Bahn", "Lufthansa", "Otto GmbH", "Zalando SE", "E.ON Energie",
    "Vattenfall", "Rundfunkbeitrag", "Stadt Hamburg", "Landratsamt Freising", "Arbeitgeber AG",
    "Kita Sonnenschein", "Universität Leipzig", "DKV", "ERGO Versicherung", "Barmer",
    "Commerzbank", "ING-DiBa", "PayPal Europe", "Apple Distribution", "Hetzner Online",
    "Autohaus Meyer",
]  # fmt: skip
# MIME type -> (file name suffix, how common it is).
MIME_TYPES = {
    "application/pdf": (".pdf", 70),
    "image/jpeg": (".jpg", 10),
    "image/png": (".png", 6),
    "image/tiff": (".tif", 2),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx", 5),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx", 2),
    "message/rfc822": (".eml", 2),
    "text/plain": (".txt", 3),
}
STATUSES = {"completed": 84, "failed": 6, "duplicate": 5, "pending": 3, "processing": 2}
STEP_NAMES = ("convert", "ocr", "extract_metadata", "embed_metadata", "finalize")
VOCABULARY = (
    "Rechnung Betrag Datum Kunde Nummer Summe MwSt netto brutto Zahlung fällig Konto IBAN "
    "invoice amount total due date customer account payment reference order delivery item "
    "quantity price tax statement balance period policy premium insurance contract term "
    "notice letter dear regards sincerely Vertrag Kündigung Frist Versicherung Beitrag "
    "Monat Jahr Abrechnung Verbrauch Zähler Stand kWh Tarif Grundpreis Arbeitspreis Gehalt "
    "Lohn Steuer Sozialversicherung Rente Krankenversicherung Bescheid Einkommen Erstattung"
)
CREATED_FROM = datetime(2019, 1, 1, tzinfo=UTC)
CREATED_SPAN_SECONDS = int((datetime(2025, 7, 1, tzinfo=UTC) - CREATED_FROM).total_seconds())

# --- What is asked ---------------------------------------------------------------------------

# The same requests at both sizes; each fills its page of 50 in the small archive too (page
# 20 is its last page), so both sizes render the same amount per answer.
REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("page 1", {}),
    ("page 5", {"page": "5"}),
    ("page 20", {"page": "20"}),
    ("status=completed", {"status": "completed"}),
    ("status=failed", {"status": "failed"}),
    ("mime_type=application/pdf", {"mime_type": "application/pdf"}),
    ("oldest first", {"sort_by": "created_at", "sort_order": "asc"}),
    ("by title", {"sort_by": "document_title", "sort_order": "asc"}),
    ("tags=invoice", {"tags": "invoice"}),
    ("tags=invoice,private", {"tags": "invoice,private"}),
    ("search=stadtwerke", {"search": "stadtwerke"}),
    ("date_from=2024-01-01", {"date_from": "2024-01-01"}),
    ("first half of 2023", {"date_from": "2023-01-01", "date_to": "2023-06-30"}),
]
# Requests on custom fields and tag trees name entries by id, known once the first archive is
# seeded (every archive makes them in the same order, so with the same ids): the values
# "<field:Name>" and "<tag:name>" are replaced then (resolve_entry_ids).
ENTRY_REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("Total 100-500 (custom field)", {"custom_field": "<field:Total>", "cf_min": "100", "cf_max": "500"}),
    ("Status=paid (custom field)", {"custom_field": "<field:Status>", "cf_value": "paid"}),
    ("tag tree money", {"tag_tree": "<tag:money>"}),
    ("tag tree finance", {"tag_tree": "<tag:finance>"}),
]
# Parent tag -> the tags nested directly under it.
TAG_TREE = {"money": ["finance", "bank", "payslip", "tax"], "finance": ["invoice", "receipt", "utilities"]}


# --- Databases -------------------------------------------------------------------------------


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def database_url(base: str, name: str) -> str:
    """``base`` with its database name replaced by ``name`` (on SQLite: the file's path)."""
    if is_sqlite(base):
        return f"sqlite:///{name}"
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_execute(base_url: str, *statements: sql.Composed) -> None:
    """Run statements that cannot run inside a transaction (CREATE/DROP DATABASE); on SQLite
    there is no server to ask (see sqlite_files)."""
    if is_sqlite(base_url):
        return
    with psycopg.connect(database_url(base_url, "postgres"), autocommit=True) as admin:
        for statement in statements:
            admin.execute(statement)


def create_database(name: str, *, template: str | None = None) -> sql.Composed:
    if template is None:
        return sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    return sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))


def drop_database(name: str) -> sql.Composed:
    return sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))


def setup_django(base_url: str, name: str, workdir: Path) -> None:
    """Configure this process as a DocuElevate server on database ``name``."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "docuelevate.settings",
            "DATABASE_URL": database_url(base_url, name),
            "WORKDIR": str(workdir),
            # Production settings, so Django does not record every query as DEBUG does;
            # DEBUG=false asks for a secret, which nothing here keeps.
            "DEBUG": "false",
            "SESSION_SECRET": secrets.token_urlsafe(48),
            "LOG_LEVEL": "WARNING",
            # Hundreds of requests a minute from one token: what is timed is the list, not
            # the rate limiter's 429.
            "RATE_LIMITING_ENABLED": "false",
        }
    )
    for name_ in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name_, None)
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()


def sqlite_files(folder: str, sizes: tuple[int, ...]) -> dict[int, str]:
    """The database file of each size in ``folder``, none of them there yet."""
    names = {size: str(Path(folder).resolve() / f"docuelevate_bench_{size}.sqlite3") for size in sizes}
    for name in names.values():
        Path(name).unlink(missing_ok=True)
    return names


def use_database(name: str) -> None:
    """Point Django's connection at database ``name`` (the archives share one schema)."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


# --- Seeding ---------------------------------------------------------------------------------


@dataclass
class Planned:
    """One document to insert, with the rows that hang off it."""

    document: Document
    tags: list[str]
    steps: list[dict[str, Any]]
    logs: list[tuple[str, str, str, datetime]]  # step name, status, message, timestamp
    duplicate_of_index: int | None = None
    # Custom field name -> the document's value of it (documents.models.CustomFieldValue columns).
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Names of the managed list entries the document refers to, made before the documents.
    document_type: str = ""
    correspondent: str = ""


@dataclass
class Archive:
    """Generates the same documents, in the same order, for every database."""

    owner_id: int
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))  # noqa: S311 - test data, not secrets
    index: int = 0
    page_texts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A pool of OCR'd pages: realistic sizes without generating 100,000 texts.
        words = VOCABULARY.split()
        self.page_texts = [" ".join(self.rng.choices(words, k=self.rng.randint(80, 220))) for _ in range(64)]

    def plan(self) -> Planned:
        from documents.models import Document

        rng, index = self.rng, self.index
        self.index += 1
        status = rng.choices(list(STATUSES), weights=list(STATUSES.values()))[0]
        mime_type = rng.choices(list(MIME_TYPES), weights=[w for _, w in MIME_TYPES.values()])[0]
        suffix = MIME_TYPES[mime_type][0]
        document_type = rng.choices(list(DOCUMENT_TYPES), weights=[w for _, w in DOCUMENT_TYPES.values()])[0]
        correspondent = rng.choice(CORRESPONDENTS)
        created_at = CREATED_FROM + timedelta(seconds=rng.randrange(CREATED_SPAN_SECONDS))
        document_date = (created_at - timedelta(days=rng.randint(0, 30))).date()
        pages = rng.choices([1, 2, 3, 4, 6, 12], weights=[45, 25, 12, 8, 6, 4])[0]
        if mime_type.startswith("image/"):
            filename = f"IMG_{created_at:%Y%m%d_%H%M%S}{suffix}"
        elif rng.random() < 0.3:
            filename = f"scan_{index:06d}{suffix}"
        else:
            filename = f"{document_type.replace(' ', '_')}_{correspondent.split()[0]}_{document_date}{suffix}"
        text = " ".join(rng.choice(self.page_texts) for _ in range(pages))
        document = Document(
            uuid=uuid.UUID(int=rng.getrandbits(128), version=4),
            owner_id=self.owner_id,
            source=rng.choices(["upload", "api", "imap", "watch"], weights=[50, 25, 15, 10])[0],
            original_filename=filename,
            filehash=f"{rng.getrandbits(256):064x}",
            file_size=int(rng.lognormvariate(12, 1.1)) + 1000,
            mime_type=mime_type,
            status=status,
            created_at=created_at,
            updated_at=created_at + timedelta(minutes=rng.randint(1, 30)),
        )
        planned = Planned(document=document, tags=[], steps=[], logs=[])
        planned.logs.append(("ingest", "pending", f"Received via {document.source}", created_at))
        if status == "duplicate":
            planned.duplicate_of_index = rng.randrange(index) if index else None
            planned.logs[0] = ("ingest", "duplicate", "Same content as an earlier document", created_at)
            return planned
        document.original_file = f"originals/{document.uuid.hex}"
        # How far the pipeline got: every step for a finished document, fewer otherwise.
        reached = {"completed": 5, "pending": 0}.get(status, rng.randint(0, 4))
        if reached >= 2:
            document.ocr_text = text
            document.page_count = pages
        if reached >= 3:
            title = f"{document_type} {correspondent} {document_date:%B %Y}"
            document.document_title = title
            planned.document_type = document_type
            planned.correspondent = correspondent
            document.document_date = document_date
            document.language = rng.choice(["de", "de", "de", "en"])
            document.confidence = rng.randint(40, 95)
            if document_type in {"Invoice", "Receipt", "Utility bill"}:
                amount = f"{rng.uniform(5, 900):.2f}"
                document.amounts = [{"amount": amount, "currency": "EUR"}]
                planned.custom["Total"] = {"value_decimal": Decimal(amount), "value_currency": "EUR"}
            if document_type == "Invoice":
                planned.custom["Status"] = {"value_text": rng.choice(["open", "paid", "paid"])}
            document.metadata = {"title": title, "document_type": document_type, "extractor": "rules"}
            type_tag = DOCUMENT_TYPES[document_type][0]
            planned.tags = ([type_tag] if rng.random() < 0.8 else []) + rng.sample(
                TOPIC_TAGS, rng.choices([0, 1, 2], weights=[40, 40, 20])[0]
            )
            if rng.random() < 0.5:
                planned.tags.append(str(document_date.year))
            sphere = rng.choices(list(SPHERE_TAGS), weights=list(SPHERE_TAGS.values()))[0]
            planned.tags += [sphere] if sphere else []
        if status == "completed":
            document.processed_file = f"processed/{document_date}_{document_type}_{index}.pdf"
            document.working_file = document.processed_file
        elif status == "failed":
            document.error = f"The {STEP_NAMES[reached]} step failed: the engine exited with status 1."
        moment = created_at
        for position, name in enumerate(STEP_NAMES):
            step: dict[str, Any] = {"name": name, "position": position, "status": "pending"}
            if position < reached or (position == reached and status in {"failed", "processing"}):
                started = moment + timedelta(seconds=rng.uniform(0.5, 5))
                moment = started + timedelta(seconds=rng.uniform(0.2, 40))
                step.update(started_at=started, attempts=1)
                if position < reached:
                    skipped = name == "convert" and mime_type == "application/pdf"
                    step.update(status="skipped" if skipped else "success", finished_at=moment)
                elif status == "failed":
                    step.update(status="failure", finished_at=moment, error=document.error)
                else:
                    step.update(status="in_progress", claimed_by="worker@bench 4242")
                # The outcome of each step; the real log also has an "Attempt 1" entry per
                # step, left out to keep seeding quick (the list never reads the log).
                if step["status"] != "in_progress":
                    planned.logs.append((name, step["status"], step.get("error", "done"), moment))
            planned.steps.append(step)
        return planned


@contextmanager
def given_timestamps() -> Iterator[None]:
    """Let bulk_create keep the seeded dates; ``auto_now(_add)`` would stamp every row now."""
    from django.db.models import DateTimeField

    from documents.models import Document, ProcessingLog

    fields = [
        Document._meta.get_field("created_at"),
        Document._meta.get_field("updated_at"),
        ProcessingLog._meta.get_field("timestamp"),
    ]
    saved = []
    for date_field in fields:
        assert isinstance(date_field, DateTimeField)
        saved.append((date_field, date_field.auto_now, date_field.auto_now_add))
        date_field.auto_now = date_field.auto_now_add = False
    try:
        yield
    finally:
        for date_field, auto_now, auto_now_add in saved:
            date_field.auto_now, date_field.auto_now_add = auto_now, auto_now_add


def _entries(model: Any, names: list[str], *, owner_id: int | None = None) -> dict[str, int]:
    """Managed list entries by name, made in one insert (bulk_create skips save(), which
    would fill the match key)."""
    from documents.organise.keys import match_key

    rows = [model(owner_id=owner_id, name=name, match_key=match_key(name)) for name in dict.fromkeys(names)]
    return {entry.name: entry.pk for entry in model.objects.bulk_create(rows)}


def seed(*, owner_id: int, count: int) -> float:
    """Insert ``count`` documents with their tags, steps and log; returns seconds taken."""
    from django.db import connection, transaction

    from documents.models import (
        Correspondent,
        CustomField,
        CustomFieldValue,
        Document,
        DocumentType,
        ProcessingLog,
        ProcessingStep,
        Tag,
    )

    started = time.perf_counter()
    names = [tag for tag, _ in DOCUMENT_TYPES.values()] + [tag for tag in SPHERE_TAGS if tag]
    names += TOPIC_TAGS + [str(year) for year in range(2018, 2026)] + list(TAG_TREE)
    tag_ids = _entries(Tag, names)
    for parent, children in TAG_TREE.items():
        Tag.objects.filter(pk__in=[tag_ids[child] for child in children]).update(parent_id=tag_ids[parent])
    field_ids = {
        custom_field.name: custom_field.pk
        for custom_field in (
            CustomField.objects.create(
                owner_id=owner_id, name="Total", data_type="monetary", default_currency="EUR"
            ),
            CustomField.objects.create(
                owner_id=owner_id, name="Status", data_type="select", options=["open", "paid"]
            ),
        )
    }
    type_ids = _entries(DocumentType, list(DOCUMENT_TYPES), owner_id=owner_id)
    correspondent_ids = _entries(Correspondent, CORRESPONDENTS, owner_id=owner_id)
    Tagging = Document.tags.through
    archive = Archive(owner_id=owner_id)
    ids: list[int] = []  # of the documents inserted so far, by their index
    with given_timestamps():
        while archive.index < count:
            batch = [archive.plan() for _ in range(min(BATCH, count - archive.index))]
            for planned in batch:
                planned.document.document_type_id = type_ids.get(planned.document_type)
                planned.document.correspondent_id = correspondent_ids.get(planned.correspondent)
                if planned.duplicate_of_index is not None and planned.duplicate_of_index < len(ids):
                    planned.document.duplicate_of_id = ids[planned.duplicate_of_index]
            with transaction.atomic():
                Document.objects.bulk_create([planned.document for planned in batch])
                ids.extend(planned.document.pk for planned in batch)
                Tagging.objects.bulk_create(
                    Tagging(document_id=planned.document.pk, tag_id=tag_ids[name])
                    for planned in batch
                    for name in planned.tags
                )
                CustomFieldValue.objects.bulk_create(
                    CustomFieldValue(document_id=planned.document.pk, field_id=field_ids[name], **columns)
                    for planned in batch
                    for name, columns in planned.custom.items()
                )
                ProcessingStep.objects.bulk_create(
                    ProcessingStep(document_id=planned.document.pk, **step)
                    for planned in batch
                    for step in planned.steps
                )
                ProcessingLog.objects.bulk_create(
                    ProcessingLog(
                        document_id=planned.document.pk, step_name=step, status=status, message=message,
                        timestamp=moment,
                    )
                    for planned in batch
                    for step, status, message, moment in planned.logs
                )  # fmt: skip
    with connection.cursor() as cursor:
        # What autovacuum would have done by the time an archive is this big: planner
        # statistics, and the visibility map that lets a count read only an index.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return time.perf_counter() - started


def resolve_entry_ids() -> None:
    """Add ENTRY_REQUESTS to REQUESTS with the ids of the entries they name."""
    from documents.models import CustomField, Tag

    def resolved(value: str) -> str:
        if match := re.fullmatch(r"<(field|tag):(.+)>", value):
            model = CustomField if match[1] == "field" else Tag
            return str(model.objects.get(name=match[2]).pk)
        return value

    REQUESTS.extend(
        (label, {name: resolved(value) for name, value in params.items()}) for label, params in ENTRY_REQUESTS
    )


def prepare(base_url: str, names: dict[int, str]) -> tuple[str, dict[int, float]]:
    """Create and seed one database per size; returns the API token and seconds per seed."""
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from accounts.services import token_create

    small, *others = names
    call_command("migrate", verbosity=0)
    owner = User.objects.create_user(username="bench", email="bench@example.org")
    _, raw_token = token_create(user=owner, name="bench")
    # The other archives are copies of the migrated, empty one, with the same owner and token;
    # a template database must have no sessions.
    connection.close()
    if is_sqlite(base_url):
        for size in others:
            shutil.copyfile(names[small], names[size])
    admin_execute(base_url, *(create_database(names[size], template=names[small]) for size in others))
    seconds = {}
    for size in names:
        use_database(names[size])
        seconds[size] = seed(owner_id=owner.pk, count=size)
    use_database(names[small])
    resolve_entry_ids()
    return raw_token, seconds


# --- Measuring -------------------------------------------------------------------------------


@dataclass
class Results:
    """What the requests took and cost, per archive size and request."""

    timings: dict[int, dict[str, list[float]]]  # size -> request -> seconds
    queries: dict[int, dict[str, int]]  # size -> request -> queries
    sql: dict[int, dict[str, list[str]]]  # size -> request -> statements
    totals: dict[int, dict[str, int]]  # size -> request -> matching documents


def get_json(client: Client, route: str, params: dict[str, str]) -> dict[str, Any]:
    """The JSON answer of ``GET route?params``; any answer but 200 ends the benchmark."""
    response = client.get(route, params)
    if response.status_code != 200:
        answer = f"{response.status_code}: {response.content!r}"
        raise SystemExit(f"GET {route}?{urlencode(params)} answered {answer}")
    body: dict[str, Any] = response.json()
    return body


def fewest_queries(call: Callable[[], object]) -> list[dict[str, str]]:
    """The queries ``call`` makes, as Django captures them. The token's last use is written
    at most once a minute; the smaller of two runs leaves that write out."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    runs = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            call()
        runs.append(captured.captured_queries)
    return min(runs, key=len)


def ask(client: Client, params: dict[str, str]) -> dict[str, Any]:
    """One page of the list."""
    return get_json(client, "/api/files", {"per_page": str(PER_PAGE), **params})


def measure(raw_token: str, names: dict[int, str], repeat: int) -> Results:
    """Warms up and counts the queries of every request in each archive, then times
    ``repeat`` rounds of all requests, switching archives between rounds."""
    from django.test import Client

    client = Client(SERVER_NAME="localhost", headers={"Authorization": f"Bearer {raw_token}"})
    results = Results(timings={}, queries={}, sql={}, totals={})
    for size, name in names.items():
        use_database(name)
        results.timings[size] = {label: [] for label, _ in REQUESTS}
        results.queries[size], results.sql[size], results.totals[size] = {}, {}, {}
        for label, params in REQUESTS:
            body = ask(client, params)  # warm-up: connection, plan, caches
            results.totals[size][label] = body["pagination"]["total"]
            if len(body["files"]) < PER_PAGE:
                print(f"warning: {label!r} fills only {len(body['files'])} of {PER_PAGE} in {size:,}")
            queries = fewest_queries(partial(ask, client, params))
            results.queries[size][label] = len(queries)
            results.sql[size][label] = [query["sql"] for query in queries]
    sizes = list(names)
    for round_number in range(repeat):
        for size in sizes if round_number % 2 == 0 else reversed(sizes):
            use_database(names[size])
            ask(client, {})  # connects, outside the clock
            for label, params in REQUESTS:
                started = time.perf_counter()
                ask(client, params)
                results.timings[size][label].append(time.perf_counter() - started)
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def explain(names: dict[int, str], size: int, labels: list[str], results: Results) -> None:
    """PostgreSQL's plans, in the archive of ``size``, of the list's queries on documents."""
    from django.db import connection

    use_database(names[size])
    on_documents = re.compile(r'FROM "documents_document"(\s|$)')
    column_list = re.compile(r'^SELECT "documents_document"\."id", .*? FROM')  # says nothing about plans
    for label in labels:
        for statement in results.sql[size][label]:
            if not on_documents.search(statement):
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
                plan = "\n".join(f"    {row[0]}" for row in cursor.fetchall())
            short = column_list.sub("SELECT <all columns> FROM", statement)
            print(f"\n{label} ({size:,} documents):\n  {short}\n{plan}")


def report(results: Results, seconds: dict[int, float], repeat: int) -> list[str]:
    """Prints the figures; returns the requests over the target."""
    small, large = min(results.timings), max(results.timings)
    ms = 1000
    print(f"\nseeded {small:,} documents in {seconds[small]:.1f} s, {large:,} in {seconds[large]:.1f} s")
    print(f"GET /api/files?per_page={PER_PAGE}&..., {repeat} rounds alternating the sizes, times in ms\n")
    header = (
        f"{'request':<27}{'found':>14}  {'p50':>6}{'p95':>7}  {'p50':>7}{'p95':>7}"
        f"  {'ratio p50':>9}{'p95':>6}  queries"
    )
    print(f"{'':<43}{small:>7,} docs  {large:>8,} docs")
    print(header)
    over = []
    for label, _ in REQUESTS:
        a, b = results.timings[small][label], results.timings[large][label]
        p50 = statistics.median(b) / statistics.median(a)
        p95 = percentile(b, 0.95) / percentile(a, 0.95)
        if p50 > TARGET_RATIO:
            over.append(label)
        found = f"{results.totals[small][label]:,}/{results.totals[large][label]:,}"
        print(
            f"{label:<27}{found:>14}  {statistics.median(a) * ms:6.1f}{percentile(a, 0.95) * ms:7.1f}"
            f"  {statistics.median(b) * ms:7.1f}{percentile(b, 0.95) * ms:7.1f}"
            f"  {p50:9.2f}{p95:6.2f}  {results.queries[small][label]}/{results.queries[large][label]}"
            f"{'  over target' if p50 > TARGET_RATIO else ''}"
        )
    every = {size: [t for times in results.timings[size].values() for t in times] for size in results.timings}
    p50s = {size: statistics.median(every[size]) for size in every}
    p95s = {size: percentile(every[size], 0.95) for size in every}
    print(
        f"{'all requests':<27}{'':>14}  {p50s[small] * ms:6.1f}{p95s[small] * ms:7.1f}"
        f"  {p50s[large] * ms:7.1f}{p95s[large] * ms:7.1f}"
        f"  {p50s[large] / p50s[small]:9.2f}{p95s[large] / p95s[small]:6.2f}"
    )
    print(f"\n{large:,} docs: p50 {p50s[large] * ms:.1f} ms, p95 {p95s[large] * ms:.1f} ms")
    print(f"{small:,} docs: p50 {p50s[small] * ms:.1f} ms, p95 {p95s[small] * ms:.1f} ms")
    print(f"ratio p50 {large:,} / {small:,}: {p50s[large] / p50s[small]:.2f}  (target <= {TARGET_RATIO})")
    print(f"ratio p95 {large:,} / {small:,}: {p95s[large] / p95s[small]:.2f}  (target <= {TARGET_RATIO})")
    counts = {count for size in results.queries for count in results.queries[size].values()}
    same = all(results.queries[small][label] == results.queries[large][label] for label, _ in REQUESTS)
    print(
        f"queries per request: {'/'.join(map(str, sorted(counts)))}, "
        + ("the same at both sizes (constant)" if same else "NOT the same at both sizes")
    )
    if over:
        print(f"over the target (p50 ratio > {TARGET_RATIO}): {', '.join(over)}")
    return over


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed rounds per size (default 20)")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--explain", action="store_true", help="plans of the requests over the target")
    parser.add_argument("--keep", action="store_true", help="keep the databases (to EXPLAIN by hand)")
    args = parser.parse_args()
    if not 0 < args.small < args.large or args.repeat < 1:
        raise SystemExit("need 0 < --small < --large and --repeat >= 1")

    if is_sqlite(args.database_url):
        folder = args.database_url.removeprefix("sqlite:///") or "."
        names = sqlite_files(folder, (args.small, args.large))
        drop = []
    else:
        base = urlsplit(args.database_url).path.lstrip("/") or "docuelevate_bench"
        names = {size: f"{base}_{size}" for size in (args.small, args.large)}
        drop = [drop_database(name) for name in names.values()]
        admin_execute(args.database_url, *drop, create_database(names[args.small]))
    django_ready = False
    try:
        with tempfile.TemporaryDirectory(prefix="bench-api-") as workdir:
            setup_django(args.database_url, names[args.small], Path(workdir))
            django_ready = True
            raw_token, seconds = prepare(args.database_url, names)
            results = measure(raw_token, names, args.repeat)
            over = report(results, seconds, args.repeat)
            if args.explain and over and not is_sqlite(args.database_url):
                explain(names, args.large, over, results)
    finally:
        if django_ready:
            from django.db import connections

            connections.close_all()
        if args.keep:
            print(f"\nkept: {', '.join(names.values())}")
        elif is_sqlite(args.database_url):
            for name in names.values():
                Path(name).unlink(missing_ok=True)
        else:
            admin_execute(args.database_url, *drop)


if __name__ == "__main__":
    main()
