"""The operators' status page: what it shows, who may see it, and its retry button."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from destinations.models import Destination, HealthStatus
from documents.models import Document, FailureKind, ProcessingStep, StepStatus
from documents.pipeline.state import document_refresh_status
from documents.pipeline.steps import STEP_NAMES
from documents.tests.conftest import document_storage, ingest, sent  # noqa: F401  # fixtures shared here
from ops.models import BackupRecord, BackupStatus, BackupTier
from sources.models import Source, SourceKind

STATUS = "/status"


def client_for(user: User, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def failed_document(ingest: Callable[..., Document], name: str, step_name: str, error: str) -> Document:  # noqa: F811
    document = ingest(f"content of {name}".encode(), name)
    position = STEP_NAMES.index(step_name)
    ProcessingStep.objects.filter(document=document, position__lt=position).update(status=StepStatus.SUCCESS)
    ProcessingStep.objects.filter(document=document, name=step_name).update(
        status=StepStatus.FAILURE, error=error
    )
    document_refresh_status(document)
    return document


def test_operators_see_services_queues_workers_version_backup_and_failures(
    operator: User,
    ingest: Callable[..., Document],  # noqa: F811
) -> None:
    broken = failed_document(ingest, "scan-0042.pdf", STEP_NAMES[1], "tesseract ran out of memory")
    ingest(b"fine", "fine.pdf")
    BackupRecord.objects.create(
        tier=BackupTier.DAILY,
        status=BackupStatus.SUCCEEDED,
        started_at=timezone.now() - datetime.timedelta(hours=3),
        finished_at=timezone.now() - datetime.timedelta(hours=3),
    )
    page = client_for(operator).get(STATUS)
    assert page.status_code == 200
    html = page.content.decode()

    services = {service.name: service for service in page.context["services"]}
    assert list(services) == [
        "database", "redis", "broker", "workers", "search", "workdir", "migrations", "destinations", "sources"
    ]  # fmt: skip
    assert services["database"].status == "ok"
    assert services["broker"].status == "ok"
    assert services["workdir"].status in ("ok", "warning")  # a full disk here is not the page's fault
    assert "GiB free" in services["workdir"].detail
    assert services["search"].status == "ok"
    assert services["migrations"].status == "ok"
    assert services["redis"].status == ("ok" if settings.REDIS_URL else "not_configured")
    # No worker runs in this test: the page says so instead of hanging or failing.
    assert page.context["workers"] == 0
    assert services["workers"].status == "error"
    assert "No worker answered." in html

    for heading in (
        "Services",
        "Queues and workers",
        "Destinations",
        "Last backup",
        "Recent failed documents",
    ):
        assert f">{heading}</h2>" in html
    assert set(page.context["queues"]) == {"document_processor", "default", "celery"}
    assert f"Version {settings.VERSION}" in html
    assert "Daily backup started" in html
    assert 'data-status="succeeded">Succeeded</span>' in html

    assert "scan-0042.pdf" in html
    assert "tesseract ran out of memory" in html
    assert "fine.pdf" not in html  # only failed documents are listed
    form = re.search(rf'<form method="post" action="/status/documents/{broken.pk}/retry"[^>]*>', html)
    assert form, "no retry button for the failed document"
    assert "data-confirm=" in form.group(0)
    assert f"Retry {STEP_NAMES[1]}" in html


def unstyled_classes(html: str) -> set[str]:
    """The classes of ``html`` that the built stylesheet has no rule for."""
    stylesheet = (settings.BASE_DIR / "static" / "css" / "app.css").read_text()
    used = {name for names in re.findall(r'class="([^"]*)"', html) for name in names.split()}
    # Tailwind escapes the characters of its variants in selectors: sm:p-2 is .sm\:p-2.
    return {name for name in used if "." + re.sub(r"([^A-Za-z0-9_-])", r"\\\1", name) not in stylesheet}


def test_the_page_has_the_look_of_the_others_and_says_states_and_measurements_in_words(
    operator: User,
    ingest: Callable[..., Document],  # noqa: F811
) -> None:
    failed_document(ingest, "scan-0042.pdf", STEP_NAMES[1], "tesseract ran out of memory")
    html = client_for(operator).get(STATUS).content.decode()

    assert unstyled_classes(html) == set()
    services = re.findall(r'<tr data-service="(\w+)">(.*?)</tr>', html, re.S)
    assert [name for name, _row in services] == [
        "database", "redis", "broker", "workers", "search", "workdir", "migrations", "destinations", "sources"
    ]  # fmt: skip
    rows = {name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for name, row in services}
    assert re.fullmatch(r"Database Working Answers in (under 1|\d+) ms\.", rows["database"]), rows
    assert rows["broker"] in (
        "Broker Working Messages go through files on this machine (embedded broker).",
        "Broker Working Messages go through Redis.",
    ), rows
    assert rows["workers"] == "Workers Not working No worker answered.", rows
    assert re.fullmatch(
        r"WORKDIR (Working|Needs a look) (Little free space; )?Writable, [\d.]+ [MG]iB free\.",
        rows["workdir"],
    )
    assert rows["migrations"] == "Migrations Working All migrations applied.", rows
    # No machine value is left for a person to decode.
    for raw in ("True", "False", "None", "latency ms", "free bytes", "writable True", "not_configured"):
        assert raw not in " ".join(rows.values()), rows
    assert ">Failed</span> <strong>1</strong>" in html  # the documents by status, in words


def test_a_service_that_is_down_is_shown_as_an_error_and_the_page_still_answers(
    operator: User, settings: Any
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    page = client_for(operator).get(STATUS)
    assert page.status_code == 200
    redis_state = next(service for service in page.context["services"] if service.name == "redis")
    assert redis_state.status == "error"
    assert "Connection" not in redis_state.detail  # a reason, not an exception's text


def test_the_page_runs_no_inline_script_and_no_event_handler_attribute(operator: User) -> None:
    html = client_for(operator).get(STATUS).content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts
    assert all("src=" in tag for tag in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html)


def test_the_newest_backup_failing_is_shown_with_the_last_one_that_worked(operator: User, db: None) -> None:
    BackupRecord.objects.create(
        tier=BackupTier.HOURLY,
        status=BackupStatus.SUCCEEDED,
        started_at=timezone.now() - datetime.timedelta(days=2),
        finished_at=timezone.now() - datetime.timedelta(days=2),
    )
    BackupRecord.objects.create(tier=BackupTier.HOURLY, status=BackupStatus.FAILED, started_at=timezone.now())
    html = client_for(operator).get(STATUS).content.decode()
    assert 'data-status="failed">Failed</span>' in html
    assert "Last successful backup:" in html


def test_a_page_without_backups_or_failures_says_so(operator: User, db: None) -> None:
    html = client_for(operator).get(STATUS).content.decode()
    assert "No backup has been made yet." in html
    assert "No failed documents." in html
    assert "No destinations: processed documents are kept here only." in html
    assert "No sources: documents come in only when someone uploads or sends them." in html


def _destination(name: str, health: str, *, owner: User | None = None, enabled: bool = True) -> Destination:
    checked = timezone.now() - datetime.timedelta(minutes=7) if health != HealthStatus.UNKNOWN else None
    return Destination.objects.create(
        kind="s3",
        name=name,
        owner=owner,
        enabled=enabled,
        settings={"bucket": "archive"},
        health_status=health,
        health_checked_at=checked,
        health_error="S3 refused the credentials (InvalidAccessKeyId)."
        if health == HealthStatus.FAILING
        else "",
        health_error_kind=FailureKind.CONFIGURATION if health == HealthStatus.FAILING else "",
    )


@pytest.mark.django_db(transaction=True)
def test_destinations_and_their_health_are_shown_in_words_the_failing_ones_first(
    operator: User, owner: User
) -> None:
    _destination("Working archive", HealthStatus.OK)
    _destination("Alice's drive", HealthStatus.UNKNOWN, owner=owner)
    _destination("Company archive", HealthStatus.FAILING)
    _destination("Old bucket", HealthStatus.FAILING, enabled=False)

    html = client_for(operator).get(STATUS).content.decode()

    rows = re.findall(r'<tr data-destination="\d+">(.*?)</tr>', html, re.S)
    words = [unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()) for row in rows]
    assert words == [
        "Company archive S3 and compatible Everyone (system-wide) Failing 7 minutes ago "
        "Settings or credentials refused: S3 refused the credentials (InvalidAccessKeyId).",
        "Alice's drive S3 and compatible owner Not checked yet never",
        "Working archive S3 and compatible Everyone (system-wide) Working 7 minutes ago",
        "Old bucket S3 and compatible Everyone (system-wide) Disabled 7 minutes ago",
    ], words
    assert 'data-status="error">Failing</span>' in html
    service = re.search(r'<tr data-service="destinations">(.*?)</tr>', html, re.S)
    assert service
    assert re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", service.group(1))).strip() == (
        "Destinations Needs a look 3 enabled, 1 failing, 1 not checked yet, including Company archive."
    )
    assert unstyled_classes(html) == set()


def test_the_page_costs_a_bounded_number_of_queries_however_many_documents_failed(
    operator: User,
    ingest: Callable[..., Document],  # noqa: F811
    django_assert_max_num_queries: Any,
) -> None:
    for number in range(12):
        failed_document(ingest, f"broken-{number}.pdf", STEP_NAMES[0], "unreadable")
    client = client_for(operator)
    with django_assert_max_num_queries(12):
        page = client.get(STATUS)
    assert len(page.context["failures"]) == 10


def test_other_users_are_refused_and_visitors_sent_to_the_login_page(other_user: User, db: None) -> None:
    refused = client_for(other_user).get(STATUS)
    assert refused.status_code == 403
    assert "scan" not in refused.content.decode()

    visitor = Client().get(STATUS)
    assert visitor.status_code == 302
    assert visitor["Location"].startswith("/accounts/login/")
    assert "next=/status" in visitor["Location"]

    assert Client().post(f"{STATUS}/documents/1/retry").status_code == 302
    assert client_for(other_user).post(f"{STATUS}/documents/1/retry").status_code == 403


def test_the_retry_button_reruns_the_failed_step_and_needs_the_csrf_token(
    operator: User,
    ingest: Callable[..., Document],  # noqa: F811
    sent: list[dict[str, Any]],  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    failed_step = STEP_NAMES[2]
    broken = failed_document(ingest, "broken.pdf", failed_step, "the metadata service timed out")
    client = client_for(operator, csrf=True)
    page = client.get(STATUS).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token

    forged = client.post(f"{STATUS}/documents/{broken.pk}/retry")
    assert forged.status_code == 403
    assert sent == []

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            f"{STATUS}/documents/{broken.pk}/retry", {"csrfmiddlewaretoken": token.group(1)}, follow=True
        )
    assert answer.redirect_chain == [("/status", 302)]
    assert f"Retrying the {failed_step} step of broken.pdf." in answer.content.decode()
    assert [(call["task"], call["args"]) for call in sent] == [
        ("documents.tasks.pipeline_step_task", (broken.pk, failed_step))
    ]
    steps = dict(ProcessingStep.objects.filter(document=broken).values_list("name", "status"))
    assert steps[failed_step] == StepStatus.PENDING
    assert steps[STEP_NAMES[0]] == StepStatus.SUCCESS
    broken.refresh_from_db()
    assert broken.status != "failed"
    # Gone from the list of failures.
    assert "broken.pdf" not in answer.content.decode().split("Recent failed documents")[1]


def test_retrying_a_document_without_a_failed_step_changes_nothing(
    operator: User,
    ingest: Callable[..., Document],  # noqa: F811
    sent: list[dict[str, Any]],  # noqa: F811
) -> None:
    document = ingest(b"fine", "fine.pdf")
    answer = client_for(operator).post(f"{STATUS}/documents/{document.pk}/retry", follow=True)
    assert "fine.pdf has no failed step to retry." in answer.content.decode()
    assert sent == []
    assert client_for(operator).post(f"{STATUS}/documents/999999/retry").status_code == 404


@pytest.mark.parametrize("method", ["get", "put"])
def test_the_retry_route_accepts_only_post(operator: User, db: None, method: str) -> None:
    assert getattr(client_for(operator), method)(f"{STATUS}/documents/1/retry").status_code == 405


def test_a_long_list_of_destinations_shows_the_failing_ones_and_says_how_many_are_left_out(
    operator: User, owner: User, django_assert_max_num_queries: Any
) -> None:
    Destination.objects.bulk_create(
        Destination(kind="s3", name=f"drive {number:02d}", owner=owner, health_status=HealthStatus.OK)
        for number in range(52)
    )
    _destination("Company archive", HealthStatus.FAILING)
    client = client_for(operator)
    with django_assert_max_num_queries(13):
        html = client.get(STATUS).content.decode()
    rows = re.findall(r'<tr data-destination="\d+">', html)
    assert len(rows) == 50
    assert html.index("Company archive") < html.index("drive 00")
    assert "And 3 more; the failing ones are listed first." in html


def _source(name: str, state: str, *, owner: User | None = None, enabled: bool = True) -> Source:
    """A mailbox as its last poll left it: ``ok``, ``failing`` or ``new`` (never polled)."""
    polled = timezone.now() - datetime.timedelta(minutes=3) if state != "new" else None
    return Source.objects.create(
        kind=SourceKind.IMAP,
        name=name,
        owner=owner,
        enabled=enabled,
        last_poll_at=polled,
        last_success_at=timezone.now() - datetime.timedelta(hours=2) if polled else None,
        last_error="The mail server refused the sign-in of scans: check the password."
        if state == "failing"
        else "",
        last_error_kind=FailureKind.CONFIGURATION if state == "failing" else "",
    )


@pytest.mark.django_db(transaction=True)
def test_sources_and_their_last_poll_are_shown_in_words_the_failing_ones_first(
    operator: User, owner: User
) -> None:
    _source("Working inbox", "ok")
    _source("Alice's mail", "new", owner=owner)
    _source("Scanner inbox", "failing")
    _source("Old inbox", "failing", enabled=False)

    html = client_for(operator).get(STATUS).content.decode()

    rows = re.findall(r'<tr data-source="\d+">(.*?)</tr>', html, re.S)
    words = [unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()) for row in rows]
    assert words == [
        "Scanner inbox E-mail (IMAP) Everyone (system-wide) Failing 3 minutes ago 2 hours ago "
        "Settings or credentials refused: The mail server refused the sign-in of scans: check the password.",
        "Alice's mail E-mail (IMAP) owner Not polled yet never never",
        "Working inbox E-mail (IMAP) Everyone (system-wide) Working 3 minutes ago 2 hours ago",
        "Old inbox E-mail (IMAP) Everyone (system-wide) Disabled 3 minutes ago 2 hours ago",
    ], words
    service = re.search(r'<tr data-service="sources">(.*?)</tr>', html, re.S)
    assert service
    assert unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", service.group(1))).strip()) == (
        "Sources Needs a look 3 enabled, 1 failing, 1 not polled yet, "
        "including Scanner inbox (settings or credentials refused)."
    )
    assert unstyled_classes(html) == set()
