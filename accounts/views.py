"""Sign-in pages: allauth's, with single sign-on first when the operator asks for it."""

from __future__ import annotations

from urllib.parse import urlencode

from allauth.account.views import login as allauth_login
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse


def login(request: HttpRequest) -> HttpResponse:
    """With SSO_AUTO_LOGIN, skip the form and go to the provider.

    ``?local=1`` still shows the form, so the operator's local account remains a way in
    when the provider is down (the SSO failure page links there).
    """
    if (
        settings.SSO_AUTO_LOGIN
        and request.method == "GET"
        and "local" not in request.GET
        and not request.user.is_authenticated
    ):
        target = reverse("oidc_authentication_init")
        if next_url := request.GET.get("next"):
            target += "?" + urlencode({"next": next_url})
        return HttpResponseRedirect(target)
    response: HttpResponse = allauth_login(request)
    return response
