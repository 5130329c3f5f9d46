"""The operators' status page (``/status``): is everything up, what is waiting, what failed.

One page an operator opens when something seems wrong: the services and their state,
queue lengths and workers, the destinations and whether they work, the sources (mailboxes,
watched folders) and how their last poll went, version and build, the
last backup, and the most recent failed documents, each with a button that retries its
failed step. Staff only; everyone else is
sent to the login page (anonymous) or refused (403).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import viewer_for_request
from accounts.permissions import request_has_operator_rights
from destinations.models import Destination
from destinations.selectors import destinations_by_health
from docuelevate.errors import ApplicationError, NotFound
from documents.models import Document, DocumentStatus
from documents.selectors import document_get_for_user, documents_by_status
from documents.services import document_retry_step
from ops import health
from ops.models import BackupRecord, BackupStatus
from ops.probes.broker import queue_lengths
from sources.models import Source
from sources.selectors import sources_by_health

logger = logging.getLogger(__name__)

RECENT_FAILURES = 10
# Destinations and sources listed; the failing ones come first, so a long list hides only
# working ones.
DESTINATIONS_SHOWN = 50
SOURCES_SHOWN = 50

View = Callable[..., HttpResponse]


def operators_only(view: View) -> View:
    """Operators may pass (the rule of the operator API routes); anonymous visitors go to
    the login page, other users get 403."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request_has_operator_rights(request):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return guarded


# --- Services --------------------------------------------------------------------------------

# The checks of /api/health (ops.health) that describe a running service, in page order;
# the backup has its own section.
SERVICE_CHECKS = {
    "database": "Database",
    "redis": "Redis",
    "broker": "Broker",
    "workers": "Workers",
    "search": "Search",
    "workdir": "WORKDIR",
    "migrations": "Migrations",
    "destinations": "Destinations",
    "sources": "Sources",
}


@dataclass(frozen=True)
class ServiceState:
    """One service as the page shows it: ``ok``, ``warning``, ``error`` or ``not_configured``."""

    name: str
    label: str
    status: str
    detail: str
    facts: dict[str, Any]


def _detail(facts: dict[str, Any]) -> str:
    """The check's facts in words: its reason when it has one, else what it measured."""
    if facts.get("reason"):
        return str(facts["reason"])
    words = []
    for name, value in facts.items():
        if name == "free_bytes":
            words.append(f"{value / 1024**3:.1f} GiB free")
        elif value is not None:
            words.append(f"{name.replace('_', ' ')} {value}")
    return ", ".join(words)


def service_states() -> list[ServiceState]:
    """The services' states, from the same time-bounded checks as /api/health."""
    results = health.run_checks(health.HEALTH_CHECKS, only=SERVICE_CHECKS)
    return [
        ServiceState(
            name,
            label,
            health.HEALTH_WORDS[results[name].status],
            _detail(dict(results[name].facts)),
            dict(results[name].facts),
        )
        for name, label in SERVICE_CHECKS.items()
    ]


# --- Page data -------------------------------------------------------------------------------


def recent_failures() -> QuerySet[Document]:
    """The newest failed documents, each with ``failed_step``, the first step that failed."""
    return (
        Document.objects.filter(status=DocumentStatus.FAILED)
        .with_failed_step()
        .select_related("owner")
        .only("id", "original_filename", "error", "updated_at", "owner__username")
        .order_by("-updated_at", "-id")[:RECENT_FAILURES]
    )


def destinations_overview() -> dict[str, Any]:
    """Every destination and its health for the page, the failing ones first; ``more`` is
    how many are left out."""
    shown: list[Destination] = list(destinations_by_health()[: DESTINATIONS_SHOWN + 1])
    more = 0
    if len(shown) > DESTINATIONS_SHOWN:
        more = Destination.objects.count() - DESTINATIONS_SHOWN
        shown = shown[:DESTINATIONS_SHOWN]
    return {"shown": shown, "more": more}


def sources_overview() -> dict[str, Any]:
    """Every source and how its last poll went, the failing ones first; ``more`` is how
    many are left out."""
    shown: list[Source] = list(sources_by_health()[: SOURCES_SHOWN + 1])
    more = 0
    if len(shown) > SOURCES_SHOWN:
        more = Source.objects.count() - SOURCES_SHOWN
        shown = shown[:SOURCES_SHOWN]
    return {"shown": shown, "more": more}


def last_backups() -> dict[str, BackupRecord | None]:
    newest = BackupRecord.objects.order_by("-started_at").first()
    succeeded = newest
    if newest is not None and newest.status != BackupStatus.SUCCEEDED:
        succeeded = BackupRecord.objects.filter(status=BackupStatus.SUCCEEDED).order_by("-started_at").first()
    return {"newest": newest, "succeeded": succeeded}


@require_GET
@operators_only
def status_page(request: HttpRequest) -> HttpResponse:
    services = service_states()
    workers = next(service for service in services if service.name == "workers").facts.get("online", 0)
    context = {
        "services": services,
        "queues": queue_lengths(),
        "workers": workers,
        "documents": documents_by_status(viewer=viewer_for_request(request)),
        "version": settings.VERSION,
        "build": settings.BUILD,
        "destinations": destinations_overview(),
        "sources": sources_overview(),
        "backups": last_backups(),
        "failures": recent_failures(),
    }
    return render(request, "ops/status.html", context)


@require_POST
@operators_only
def status_retry(request: HttpRequest, document_id: int) -> HttpResponse:
    """Retry the first failed step of a document (and the steps after it)."""
    try:
        document = document_get_for_user(viewer=viewer_for_request(request), document_id=document_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    annotated = Document.objects.filter(pk=document.pk).with_failed_step().get()
    step: str | None = getattr(annotated, "failed_step", None)
    if step is None:
        messages.info(request, f"{document.original_filename} has no failed step to retry.")
        return redirect("status")
    try:
        document_retry_step(document=document, step_name=step)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        logger.info("operator retried %s of document %s", step, document.pk)
        messages.success(request, f"Retrying the {step} step of {document.original_filename}.")
    return redirect("status")
