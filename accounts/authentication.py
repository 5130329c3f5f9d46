"""API token authentication for DRF: ``Authorization: Bearer <token>`` (or ``Token <token>``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import ApiToken, User
from accounts.services import single_user_get_or_create, token_authenticate
from docuelevate.addresses import client_ip
from docuelevate.views import API_PATH_PREFIX

if TYPE_CHECKING:
    from rest_framework.request import Request

# "Token" is what DocuElevate's older clients send; "Bearer" is the standard.
KEYWORDS = (b"bearer", b"token")


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticates API requests by a DocuElevate API token.

    Only under ``/api/``: a token is for programs, and must never open the pages or the
    Django admin, which rely on the session and its CSRF protection. A request that names
    a token which is malformed, unknown, revoked or expired fails with 401 instead of
    falling back to the session, so a client learns at once that its token is dead.
    ``request.auth`` is the ApiToken, which is how permissions tell a token from a session
    (see ``accounts.permissions``).
    """

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        if not request.path_info.startswith(API_PATH_PREFIX):
            return None
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None  # no header, or another scheme (e.g. Basic) for another authenticator
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid Authorization header: expected '<scheme> <token>'.")
        try:
            raw_token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid API token.") from None
        token = token_authenticate(raw_token=raw_token, ip=client_ip(request))
        if token is None:
            raise AuthenticationFailed("Invalid, expired or revoked API token.")
        return token.owner, token

    def authenticate_header(self, request: Request) -> str:
        # Without a WWW-Authenticate value DRF answers 403 to anonymous requests; with it,
        # 401, which tells clients to sign in rather than that they lack a right.
        return "Bearer"


class SingleUserAuthentication(BaseAuthentication):
    """Single-user mode (AUTH_ENABLED=false): every API request without a token is the local user.

    Takes the place of session authentication in that mode, so programs need neither a
    login nor a CSRF token. Settings install it only when the operator turned auth off.
    """

    def authenticate(self, request: Request) -> tuple[User, None]:
        return single_user_get_or_create(), None


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular registers extensions in an untyped __init_subclass__
    """Describes the token to drf-spectacular, so /api/schema/ shows the bearer scheme."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        # "Bearer" is the scheme's name, not a secret.
        return build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106
            bearer_format="de_…",
        )
