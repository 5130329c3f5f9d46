"""DRF permissions that depend on how a request authenticated, not only on who made it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission

from accounts.models import ApiToken, User

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request
    from rest_framework.views import APIView


def request_has_operator_rights(request: HttpRequest | Request) -> bool:
    """Whether this request may use operator routes, and see every user's documents.

    A staff user signed in with a session may. With an API token, only if the token was
    made with operator scope: an operator's everyday token for a script or a phone must
    not open staff routes when it leaks. Any other credential (``request.auth`` set to
    something else) is refused, so a future authenticator has to opt in here.
    """
    user = request.user
    if not (isinstance(user, User) and user.is_active and user.is_staff):
        return False
    # Pages know no tokens (ApiTokenAuthentication only answers under /api/): a page request
    # is a session's, as is an API request that did not name a token.
    credentials = getattr(request, "auth", None)
    if credentials is None:  # session login (or a test's force_authenticate without a token)
        return True
    return isinstance(credentials, ApiToken) and credentials.operator_scope


class IsOperator(BasePermission):
    """Staff routes: a staff session, or a staff user's token with operator scope."""

    message = "This needs an operator account (an API token needs operator scope)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request_has_operator_rights(request)


class IsSessionAuthenticated(BasePermission):
    """Routes that must not be reachable with an API token, only with a signed-in session.

    Used where a token could otherwise perpetuate itself, e.g. minting new device tokens:
    revoking a leaked token must be enough to lock its holder out.
    """

    message = "This needs a signed-in session; an API token cannot be used here."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated and request.auth is None)
