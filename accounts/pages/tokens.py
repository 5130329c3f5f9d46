"""The API tokens page (/api-tokens): list, create (the token is shown once), revoke.

Thin: the form checks shape, accounts.services makes and revokes tokens, and the
services' readable errors are shown on the form.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import signed_in_user
from accounts.pages.forms import TokenCreateForm
from accounts.selectors import token_list_for_user
from accounts.services import token_create, token_revoke
from docuelevate.errors import InvalidInput, NotFound


@never_cache  # the response that carries a new token must not be kept by any cache
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """GET lists the user's tokens; POST creates one and shows it in this response only."""
    user = signed_in_user(request)
    new_token: str | None = None
    status = 200
    if request.method == "POST":
        form = TokenCreateForm(request.POST, user=user)
        if form.is_valid():
            try:
                _, new_token = token_create(
                    user=user,
                    name=form.cleaned_data["name"],
                    expires_at=form.expires_at(),
                    operator_scope=form.cleaned_data.get("operator_scope", False),
                )
            except InvalidInput as exc:
                form.add_error(None, exc.message)
        if new_token is None:
            status = 400
        else:
            form = TokenCreateForm(user=user)  # an empty form for the next token
    else:
        form = TokenCreateForm(user=user)
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": list(token_list_for_user(user=user)),
        "now": timezone.now(),
    }
    return render(request, "accounts/tokens.html", context, status=status)


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of the user's own tokens; someone else's is a 404, like a missing one."""
    user = signed_in_user(request)
    try:
        token = token_revoke(user=user, token_id=token_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    messages.success(request, f"Revoked the API token “{token.name}”. Clients using it are signed out.")
    return HttpResponseRedirect(reverse("api-tokens"))
