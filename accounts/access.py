"""Who makes a request, and with which rights: the user together with the credential.

Seeing every user's documents is an operator right, and operator rights come with the
credential (``accounts.permissions.request_has_operator_rights``), not with the person: an
operator's everyday or mobile token is only that person's. So visibility is decided on a
``Viewer``, built once per request, never on a bare user. Views that act for the signed-in
user (their tokens, their saved searches) take them from ``signed_in_user``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from accounts.models import User
from accounts.permissions import request_has_operator_rights

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest


@dataclass(frozen=True)
class Viewer:
    """The user a read is for, and whether this request carries operator rights.

    ``Document.objects.visible_to`` and ``document_get_for_user`` take one. Build it with
    ``viewer_for_request`` in views; ``operator=True`` by hand only where the rights were
    checked another way (tests of the rule itself).
    """

    user: User | AnonymousUser
    operator: bool = False


def viewer_for_request(request: HttpRequest | Request) -> Viewer:
    """The viewer of a page or API request: its user, with operator rights only for a staff
    session or a staff user's token with operator scope."""
    return Viewer(user=request.user, operator=request_has_operator_rights(request))


def signed_in_user(request: HttpRequest | Request) -> User:
    """The request's signed-in user, as the project's ``User``.

    For views whose guard (``login_required``, DRF's ``IsAuthenticated``) has refused
    anonymous visitors already; this is the backstop, and tells the type checker so. An
    anonymous request is refused the way its channel refuses one: 401 from the API, 403
    from a page.
    """
    user = request.user
    if isinstance(user, User):
        return user
    if isinstance(request, Request):
        raise NotAuthenticated()
    raise PermissionDenied
