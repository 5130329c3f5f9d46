"""What a checklist item answers: PASS, WARN or FAIL, the reason, and the fix."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class Status(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one checklist item; ``fix`` says what to do when it is not PASS."""

    name: str
    status: Status
    reason: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()}


def passed(name: str, reason: str) -> CheckResult:
    return CheckResult(name, Status.PASS, reason)


def warned(name: str, reason: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.WARN, reason, fix)


def failed(name: str, reason: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, reason, fix)


def error_text(exc: BaseException) -> str:
    """An exception for a one-line reason: its class, and its message cut short."""
    message = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {message[:200]}" if message else exc.__class__.__name__
