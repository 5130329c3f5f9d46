"""Connecting a cloud drive (Dropbox, Google Drive, OneDrive) to a destination: OAuth pages.

``connect`` (``/destinations/<id>/connect``) sends the person to the provider to sign in
and allow DocuElevate in; ``callback`` (``/destinations/connect/<kind>/callback``) is where
the provider sends them back with a code, which is exchanged for a refresh token and
stored sealed with the destination (``destination_connect``). The token is never shown,
logged or put in a message.

The flow is bound to the session that started it: a random ``state`` (checked in constant
time, used once, for ten minutes) and a PKCE verifier (RFC 7636) that never leaves the
server, so a code sent to someone else's browser, or stolen on the way, is worth nothing.
People connect their own destinations; operators also the system-wide ones, the
environment's included (its refresh token then survives restarts: see
``destinations.kinds.oauth``).

The redirect URI each provider is given is PUBLIC_BASE_URL + the callback's route.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.access import signed_in_user, viewer_for_request
from destinations.kinds import KINDS, kind_class
from destinations.kinds.base import DeliveryFailed, DeliveryTemporarilyFailed
from destinations.kinds.oauth import OAuthKind, new_code_verifier
from destinations.models import Destination
from destinations.selectors import destination_get_for_viewer
from destinations.services import destination_connect
from docuelevate.errors import NotFound
from docuelevate.views import error_response

logger = logging.getLogger(__name__)

SESSION_KEY = "destination_connect"
FLOW_LIFETIME_SECONDS = 600
# What may be echoed of a provider's error code: letters, digits and a few marks.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,60}")


def redirect_uri(kind: str) -> str:
    """The callback's address as the provider must have it registered."""
    return settings.PUBLIC_BASE_URL + reverse("destination-connect-callback", kwargs={"kind": kind})


@never_cache
@login_required
@require_GET
def connect(request: HttpRequest, destination_id: int) -> HttpResponse:
    """Send the person to the provider to connect ``destination`` to their account there.

    ``?next=`` (a path on this site) is where they land once connected.
    """
    destination = _destination(request, destination_id)
    cls = _oauth_kind(destination.kind)
    if not cls.signs_in_with_oauth(destination.settings):
        return error_response(
            request,
            status=409,
            detail=f"{destination.name} signs in with a service account's key, not an account.",
        )
    try:
        app = cls.oauth_app(redirect_uri=redirect_uri(destination.kind))
    except DeliveryFailed as exc:
        return error_response(request, status=409, detail=exc.message)
    state, verifier = secrets.token_urlsafe(32), new_code_verifier()
    back = request.GET.get("next", "")
    request.session[SESSION_KEY] = {
        "state": state,
        "verifier": verifier,
        "destination_id": destination.pk,
        "kind": destination.kind,
        "user_id": signed_in_user(request).pk,
        "next": back if _is_local(request, back) else "",
        "started": time.time(),
    }
    return HttpResponseRedirect(app.authorization_url(state=state, code_verifier=verifier))


@never_cache
@login_required
@require_GET
def callback(request: HttpRequest, kind: str) -> HttpResponse:
    """Where the provider sends the person back: exchange the code for a refresh token and
    keep it with the destination the flow was started for."""
    cls = _oauth_kind(kind)
    flow: dict[str, Any] | None = request.session.pop(SESSION_KEY, None)  # used once, whatever comes
    if not _is_this_flow(request, flow, kind):
        return error_response(
            request,
            status=400,
            detail="This connection was not started here, or took too long. Start it again from the "
            "destinations page.",
        )
    assert flow is not None
    refused = request.GET.get("error", "")
    if refused:
        code = refused if _ERROR_CODE.fullmatch(refused) else "an error"
        return error_response(
            request, status=400, detail=f"{cls.provider} did not allow the connection ({code})."
        )
    code = request.GET.get("code", "")
    if not code:
        return error_response(request, status=400, detail=f"{cls.provider} sent no authorization code back.")
    destination = _destination(request, int(flow["destination_id"]))
    try:
        app = cls.oauth_app(redirect_uri=redirect_uri(kind))
        token = app.exchange(code=code, code_verifier=str(flow["verifier"]))
    except DeliveryTemporarilyFailed as exc:
        return error_response(request, status=502, detail=exc.message)
    except DeliveryFailed as exc:
        return error_response(request, status=400, detail=exc.message)
    destination_connect(destination=destination, refresh_token=token)
    logger.info("destination %s connected to %s", destination.pk, cls.provider)
    messages.success(request, f"{destination.name} is connected to {cls.provider}.")
    return HttpResponseRedirect(flow["next"] or reverse("dashboard"))


def _destination(request: HttpRequest, destination_id: int) -> Destination:
    try:
        return destination_get_for_viewer(viewer=viewer_for_request(request), destination_id=destination_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _oauth_kind(kind: str) -> type[OAuthKind]:
    """The class of a kind that connects through OAuth; 404 for any other."""
    if kind not in KINDS:
        raise Http404("There is no such kind of destination.")
    cls = kind_class(kind)
    if not issubclass(cls, OAuthKind):
        raise Http404("This kind of destination has its own credentials; there is nothing to connect.")
    return cls


def _is_this_flow(request: HttpRequest, flow: dict[str, Any] | None, kind: str) -> bool:
    """Whether the callback answers the flow this session started, for this person, in time."""
    if not isinstance(flow, dict):
        return False
    return (
        flow.get("kind") == kind
        and flow.get("user_id") == getattr(request.user, "pk", None)
        and time.time() - float(flow.get("started", 0)) <= FLOW_LIFETIME_SECONDS
        and constant_time_compare(str(flow.get("state", "")), request.GET.get("state", ""))
    )


def _is_local(request: HttpRequest, url: str) -> bool:
    return bool(url) and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
