"""Sign-in pages: allauth's, with single sign-on first when the operator asks for it, and
the admin's sign-in, which is allauth's too."""

from __future__ import annotations

from urllib.parse import urlencode

from allauth.account.views import login as allauth_login
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


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


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own login form is replaced by the site's: /admin/login/ sends the browser
    to /accounts/login/ and on to the admin page it asked for.

    One form means one set of defences for the most valuable accounts: the shared sign-in
    budget, allauth's limit on failed sign-ins per account (from any address), single
    sign-on with SSO_AUTO_LOGIN, and the audit trail. Django's admin form has only the last.
    """
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    target = target or reverse("admin:index")
    user = request.user
    if user.is_authenticated:
        if user.is_active and user.is_staff:
            return HttpResponseRedirect(target)
        # Sending them to sign in would bring them straight back here, signed in as before.
        raise PermissionDenied("Only operators may use the administration.")
    return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': target})}")
