"""The one family of domain errors that services raise.

Views and the API translate these into HTTP answers in one place (400/403/404/409/412/
413/415/429/507 with ``{"detail": ...}``), so services stay free of HTTP and every channel, including
management commands and tasks, reports the same readable message.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """Base of all domain errors; ``message`` is safe to show to the user."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ApplicationError):
    status_code = 400


class Forbidden(ApplicationError):
    """The caller may see the thing but not do this to it (a user making a system-wide destination)."""

    status_code = 403


class NotFound(ApplicationError):
    status_code = 404


class Conflict(ApplicationError):
    status_code = 409


class StaleEdit(ApplicationError):
    """An edit made on an older reading of the thing than the one stored: someone else saved
    in between. ``current_version`` lets a client fetch and merge instead of guessing."""

    status_code = 412

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


class RequestTimeout(ApplicationError):
    status_code = 408


class PayloadTooLarge(ApplicationError):
    status_code = 413


class UnsupportedMediaType(ApplicationError):
    status_code = 415


class RateLimited(ApplicationError):
    status_code = 429


class InsufficientStorage(ApplicationError):
    """No room to store this now (WORKDIR below MIN_FREE_DISK_MB, or the disk full): a passing
    condition, so a client may send the same request again later (HTTP 507)."""

    status_code = 507
