"""The audit trail: who did what that matters for security, from which address.

Each event becomes an ``AuditLog`` row (operators read them in the admin) and one line on
the ``docuelevate.audit`` logger, for whatever collects the logs. Services record their
own events explicitly (``audit_record``); sign-ins, sign-outs, role changes and admin
changes arrive through Django's signals, which is bookkeeping, not a side effect. The
address and the acting user come from the request being served, which a small
middleware makes known, so a service needs no request argument to be audited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
from django.http import HttpRequest, HttpResponse

from accounts.models import AuditAction, AuditLog, User
from docuelevate.addresses import client_ip

logger = logging.getLogger("docuelevate.audit")

ROLE_FIELDS = ("is_staff", "is_superuser", "is_active")
ADMIN_CHANGE_KINDS = {1: "added", 2: "changed", 3: "deleted"}  # LogEntry's action flags


@dataclass(frozen=True)
class RequestContext:
    ip: str | None
    user: User | None


_current: ContextVar[RequestContext | None] = ContextVar("audit_request", default=None)


def audit_record(
    *,
    action: AuditAction,
    actor: User | None = None,
    actor_name: str = "",
    target: str = "",
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditLog:
    """Record one event. ``actor`` defaults to the signed-in user of the current request,
    ``ip`` to its client address; outside a request (commands, tasks) both may stay empty."""
    context = _current.get()
    if actor is None and context is not None:
        actor = context.user
    if ip is None and context is not None:
        ip = context.ip
    entry = AuditLog.objects.create(
        action=action,
        actor=actor,
        actor_name=actor_name or (actor.get_username() if actor is not None else ""),
        ip=ip,
        target=target[:255],
        detail=detail or {},
    )
    logger.info(
        "audit: %s by %s from %s%s",
        action.value,
        entry.actor_name or "-",
        ip or "-",
        f": {entry.target}" if entry.target else "",
        extra={
            "audit": {"action": action.value, "user_id": entry.actor_id, "ip": ip, "target": entry.target}
        },
    )
    return entry


@contextmanager
def request_context(request: HttpRequest) -> Iterator[None]:
    user = getattr(request, "user", None)
    signed_in = user if user is not None and user.is_authenticated else None
    token = _current.set(RequestContext(ip=client_ip(request), user=signed_in))
    try:
        yield
    finally:
        _current.reset(token)


class AuditContextMiddleware:
    """Makes the current request's address and user known to ``audit_record``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_context(request):
            return self.get_response(request)


# --- Signal receivers (connected in AccountsConfig.ready) ---------------------------------------


def _ip_of(request: HttpRequest | None) -> str | None:
    return client_ip(request) if request is not None else None


def on_login(sender: Any, request: HttpRequest | None, user: User, **_: Any) -> None:
    audit_record(action=AuditAction.LOGIN, actor=user, ip=_ip_of(request))


def on_logout(sender: Any, request: HttpRequest | None, user: User | None, **_: Any) -> None:
    audit_record(action=AuditAction.LOGOUT, actor=user, ip=_ip_of(request))


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    # Django has already blanked the password in ``credentials``; only the name is kept.
    tried = str(credentials.get("username") or credentials.get("email") or credentials.get("login") or "")
    audit_record(action=AuditAction.LOGIN_FAILED, actor_name=tried[:150], ip=_ip_of(request))


def remember_roles(
    sender: type[User], instance: User, update_fields: frozenset[str] | None = None, **_: Any
) -> None:
    """Before a user is saved: their roles as stored, to compare after the save (not for
    saves that touch no role, such as the last sign-in time at every sign-in)."""
    touches_roles = update_fields is None or not update_fields.isdisjoint(ROLE_FIELDS)
    stored = (
        User.objects.filter(pk=instance.pk).values(*ROLE_FIELDS).first()
        if instance.pk and touches_roles
        else None
    )
    instance._audit_roles_before = stored  # type: ignore[attr-defined]  # read by on_user_saved


def on_user_saved(sender: type[User], instance: User, created: bool, **_: Any) -> None:
    before: dict[str, bool] | None = getattr(instance, "_audit_roles_before", None)
    after = {field: getattr(instance, field) for field in ROLE_FIELDS}
    target = f"user {instance.get_username()}"
    if created:
        if instance.is_staff or instance.is_superuser:
            audit_record(action=AuditAction.ROLE_CHANGED, target=target, detail={"new_user": after})
        return
    if before is not None and before != after:
        changes = {
            field: [before[field], after[field]] for field in ROLE_FIELDS if before[field] != after[field]
        }
        audit_record(action=AuditAction.ROLE_CHANGED, target=target, detail=changes)


def on_admin_change(sender: type[LogEntry], instance: LogEntry, created: bool, **_: Any) -> None:
    """Every change an operator makes in the admin (schedules, users, tokens, documents)."""
    if not created:
        return
    kind = f"{instance.content_type} " if instance.content_type else ""
    audit_record(
        action=AuditAction.ADMIN_CHANGE,
        actor=instance.user,
        target=f"{kind}{instance.object_repr}",
        detail={
            "change": ADMIN_CHANGE_KINDS.get(instance.action_flag, str(instance.action_flag)),
            "message": instance.get_change_message(),
        },
    )


def connect_receivers() -> None:
    user_logged_in.connect(on_login, dispatch_uid="audit_login")
    user_logged_out.connect(on_logout, dispatch_uid="audit_logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit_login_failed")
    pre_save.connect(remember_roles, sender=User, dispatch_uid="audit_remember_roles")
    post_save.connect(on_user_saved, sender=User, dispatch_uid="audit_user_saved")
    post_save.connect(on_admin_change, sender=LogEntry, dispatch_uid="audit_admin_change")
