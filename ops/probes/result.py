"""The one answer every check gives: a probe of a dependency and a checklist item alike.

A result speaks to two audiences, kept apart on purpose:

- ``reason`` and ``fix`` are sentences for the operator (``productioncheck``, the log). They
  may name a host or quote an exception, so they never leave the machine through the API.
- ``facts`` are what ``/api/health`` and ``/status`` show: numbers and short fixed phrases
  (``"reason": "unreachable"``), never a host or an exception's text.

``Status`` is one scale for every check. Its values are the checklist's words (PASS, WARN,
FAIL); the health answers show them as ``ok``, ``warning``, ``error`` (ops.health).
``NOT_CONFIGURED`` says the dependency is not part of this installation; what that means
is each view's decision (the health answer shows it, the checklist judges it).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Seconds a probe waits for its service by default: what the health answers can afford.
# productioncheck, run by hand, gives each service longer (ops.checks.configuration).
PROBE_TIMEOUT = 2.0
UNREACHABLE = "unreachable"  # the only word the API learns about a service that failed


class Status(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    WARN = "WARN"  # works, but needs the operator's attention
    FAIL = "FAIL"
    NOT_CONFIGURED = "NOT_CONFIGURED"  # the dependency is not part of this installation


# The verdicts a checklist item ends with, in the order the summary line counts them.
VERDICTS = (Status.PASS, Status.WARN, Status.FAIL)


@dataclass(frozen=True)
class CheckResult:
    """One check's answer: a status, the operator's reason and fix, and the public facts."""

    name: str
    status: Status
    reason: str = ""
    fix: str = ""  # what to do when the status is not PASS
    facts: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        """The checklist's JSON item (``productioncheck --json``): the facts are not part of it."""
        return {"name": self.name, "status": str(self.status), "reason": self.reason, "fix": self.fix}


# Positional-only, so that a fact may be called "reason" like the sentence beside it.
def passed(name: str, reason: str, /, **facts: Any) -> CheckResult:
    return CheckResult(name, Status.PASS, reason, facts=facts)


def warned(name: str, reason: str, fix: str, /, **facts: Any) -> CheckResult:
    return CheckResult(name, Status.WARN, reason, fix, facts)


def failed(name: str, reason: str, fix: str, /, **facts: Any) -> CheckResult:
    return CheckResult(name, Status.FAIL, reason, fix, facts)


def not_configured(name: str, reason: str, fix: str = "") -> CheckResult:
    return CheckResult(name, Status.NOT_CONFIGURED, reason, fix)


def unreachable(name: str, reason: str, fix: str) -> CheckResult:
    """A service that did not answer: the operator reads why, the API only that it failed."""
    return failed(name, reason, fix, reason=UNREACHABLE)


def error_text(exc: BaseException) -> str:
    """An exception for a one-line reason: its class, and its message cut short."""
    message = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {message[:200]}" if message else exc.__class__.__name__
