"""The /status page in words a person reads: ``{% load status_words %}``.

The health probes (``ops.health``) answer with machine facts (``writable=True``,
``latency_ms=4.2``, ``transport="filesystem"``) for /api/health, metrics and monitors; this
presenter only turns them into sentences for the page, so the probes stay the one source
and the page never shows a raw key or a Python value.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from django import template
from django.utils.dateparse import parse_datetime
from django.utils.timesince import timesince

from documents.models import DocumentStatus

register = template.Library()

STATE_WORDS = {
    "ok": "Working",
    "warning": "Needs a look",
    "error": "Not working",
    "not_configured": "Not set up",
}
TRANSPORT_WORDS = {
    "filesystem": "through files on this machine (embedded broker)",
    "redis": "through Redis",
    "rediss": "through Redis over TLS",
    "amqp": "through RabbitMQ",
    "amqps": "through RabbitMQ over TLS",
}
SEARCH_WORDS = {"database": "searching the database's full text", "meilisearch": "searching with Meilisearch"}
# What each queue carries (docuelevate.celery routes every task to one of them).
QUEUE_WORDS = {
    "document_processor": "Document processing",
    "default": "Indexing, deliveries, ingestion, backups",
    "celery": "Housekeeping",
}


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _latency(value: Any) -> str:
    milliseconds = float(value)
    return "answers in under 1 ms" if milliseconds < 1 else f"answers in {milliseconds:.0f} ms"


def _free(value: Any) -> str:
    gibibytes = int(value) / 1024**3
    return f"{gibibytes:.1f} GiB free" if gibibytes >= 1 else f"{int(value) / 1024**2:.0f} MiB free"


def _online(value: Any) -> str:
    return _plural(int(value), "worker answered", "workers answered") if value else ""


def _pending(value: Any) -> str:
    return (
        "all migrations applied"
        if not value
        else _plural(int(value), "migration", "migrations") + " not applied"
    )


def _destinations_failing(value: Any) -> str:
    return f"{int(value)} failing" if value else "none failing"


def _including(value: Any) -> str:
    # Destinations name each failing one; sources give its name and failure kind.
    names = [
        f"{item['name']} ({failure_kind_words(item['reason'])})" if isinstance(item, Mapping) else str(item)
        for item in value or ()
    ]
    return f"including {', '.join(names)}" if names else ""


def _last_success(value: Any) -> str:
    moment = parse_datetime(str(value)) if value else None
    return f"last success {timesince(moment)} ago" if moment else ""


# One phrase per fact a probe reports; an empty phrase says nothing more than the state.
FACT_WORDS: dict[str, Callable[[Any], str]] = {
    "latency_ms": _latency,
    "writable": lambda value: "writable" if value else "not writable",
    "free_bytes": _free,
    "online": _online,
    "transport": lambda value: "messages go " + TRANSPORT_WORDS.get(str(value), f"through {value}"),
    "backend": lambda value: SEARCH_WORDS.get(str(value), f"searching with {value}"),
    "pending": _pending,
    "last_success": _last_success,
    "age_seconds": lambda value: "",  # said by last_success
    # The destinations and sources probes: counts, and the failing system-wide ones.
    "enabled": lambda value: f"{int(value)} enabled",
    "failing": _destinations_failing,
    "unchecked": lambda value: f"{int(value)} not checked yet" if value else "",
    "never_polled": lambda value: f"{int(value)} not polled yet" if value else "",
    "failing_system_wide": _including,
}


def _fact(name: str, value: Any) -> str:
    if name in FACT_WORDS:
        return FACT_WORDS[name](value)
    if isinstance(value, bool):
        value = "yes" if value else "no"
    return "" if value is None else f"{name.replace('_', ' ')}: {value}"


@register.filter
def state_words(status: Any) -> str:
    """``ok`` → "Working", and so on; an unknown state as it is, without underscores."""
    return STATE_WORDS.get(str(status), str(status).replace("_", " ").capitalize())


@register.filter
def facts_words(facts: Mapping[str, Any] | None) -> str:
    """A probe's facts as one sentence: its reason first, then what it measured."""
    facts = dict(facts or {})
    reason = str(facts.pop("reason", "") or "")
    phrases = [phrase for name, value in facts.items() if (phrase := _fact(name, value))]
    if reason and reason.lower() in {phrase.lower() for phrase in phrases}:
        reason = ""  # "not writable" twice says nothing more
    text = "; ".join(filter(None, [reason, ", ".join(phrases)]))
    return f"{text[:1].upper()}{text[1:]}." if text else ""


# A destination's health (destinations.models.HealthStatus) in words, and the badge colour
# that says it (the status badge styles ok, error and warning).
DESTINATION_HEALTH = {
    "ok": ("Working", "ok"),
    "failing": ("Failing", "error"),
    "unknown": ("Not checked yet", "unknown"),
}
# Why a destination fails, by the kind of its failure (documents.models.FailureKind).
FAILURE_KIND_WORDS = {
    "configuration": "settings or credentials refused",
    "temporary": "does not answer",
    "timeout": "no answer in time",
    "permanent": "refused a file",
    "internal_error": "internal error",
    "too_large": "over a size limit",
    "unknown": "reason not recorded",
}


def _destination_state(destination: Any) -> tuple[str, str]:
    if not getattr(destination, "enabled", True):
        return "Disabled", "disabled"
    return DESTINATION_HEALTH.get(str(destination.health_status), (str(destination.health_status), "unknown"))


@register.filter
def destination_health_words(destination: Any) -> str:
    """A destination's health as the page says it: "Working", "Failing", "Disabled", …"""
    return _destination_state(destination)[0]


@register.filter
def destination_health_badge(destination: Any) -> str:
    """The status badge value that colours a destination's health."""
    return _destination_state(destination)[1]


@register.filter
def source_health_words(source: Any) -> str:
    """A source's last poll as the page says it: "Working", "Failing", "Not polled yet", …"""
    return _source_state(source)[0]


@register.filter
def source_health_badge(source: Any) -> str:
    """The status badge value that colours a source's last poll."""
    return _source_state(source)[1]


def _source_state(source: Any) -> tuple[str, str]:
    if not getattr(source, "enabled", True):
        return "Disabled", "disabled"
    if getattr(source, "last_error", ""):
        return "Failing", "error"
    if getattr(source, "last_poll_at", None) is None:
        return "Not polled yet", "unknown"
    return "Working", "ok"


@register.filter
def failure_kind_words(kind: Any) -> str:
    """A failure kind in words (``configuration`` → "settings or credentials refused")."""
    return FAILURE_KIND_WORDS.get(str(kind), str(kind).replace("_", " "))


@register.filter
def queue_words(name: Any) -> str:
    return QUEUE_WORDS.get(str(name), str(name))


@register.filter
def document_status_words(value: Any) -> str:
    """A document status as the pages name it (``pending`` → "Pending")."""
    labels: dict[str, str] = dict(DocumentStatus.choices)
    return labels.get(str(value), str(value))


@register.filter
def ago(moment: datetime.datetime | None) -> str:
    """ "3 hours ago" for the page's times, beside their exact date."""
    return f"{timesince(moment)} ago" if moment else ""
