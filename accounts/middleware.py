"""Single-user mode (AUTH_ENABLED=false): every visitor is the one local user."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.utils.functional import SimpleLazyObject

from accounts.services import single_user_get_or_create

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


class SingleUserMiddleware:
    """Installed only when AUTH_ENABLED=false (settings refuse that outside DEBUG unless the
    operator insists). A signed-in session keeps its own user; everyone else acts as the
    local user, looked up only when a view asks who is there."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session_user = request.user
        request.user = SimpleLazyObject(  # type: ignore[assignment]  # stands in for the user, as Django's own
            lambda: session_user if session_user.is_authenticated else single_user_get_or_create()
        )
        return self.get_response(request)
