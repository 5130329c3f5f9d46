"""The /destinations pages: a person's destinations listed with their health, added,
changed, tested and removed; operators see and manage the system-wide ones there too.

Thin: they read through the same selectors as ``/api/destinations`` (so the page and the
API show the same destinations to the same person) and change them only through the
services, whose readable errors are shown on the form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import viewer_for_request
from destinations import health
from destinations.kinds import KINDS, kind_class
from destinations.kinds.oauth import OAuthKind
from destinations.models import Destination, DestinationKind, HealthStatus
from destinations.pages.forms import DestinationForm
from destinations.selectors import (
    destination_get_for_viewer,
    destination_secret_names,
    destinations_visible_to,
)
from destinations.services import (
    destination_create,
    destination_delete,
    destination_owner,
    destination_update,
)
from docuelevate.errors import ApplicationError, NotFound

# The health badge: its data-status (which the stylesheet colours) and its words.
HEALTH_BADGES = {
    HealthStatus.UNKNOWN: ("unknown", "Not checked yet"),
    HealthStatus.OK: ("ok", "Working"),
    HealthStatus.FAILING: ("failing", "Failing"),
}


def _kind_label(kind: str) -> str:
    return str(DestinationKind(kind).label) if kind in DestinationKind.values else kind


def _destination(request: HttpRequest, destination_id: int) -> Destination:
    try:
        return destination_get_for_viewer(viewer=viewer_for_request(request), destination_id=destination_id)
    except NotFound:
        raise Http404("No such destination.") from None


def _connects(destination: Destination) -> bool:
    """Whether the destination signs in to an account a person connects on the provider's
    site (the cloud drives' OAuth kinds): its row offers Connect."""
    if destination.kind not in KINDS:
        return False
    cls = kind_class(destination.kind)
    return issubclass(cls, OAuthKind) and cls.signs_in_with_oauth(destination.settings)


def _row(destination: Destination) -> dict[str, Any]:
    badge, label = HEALTH_BADGES.get(HealthStatus(destination.health_status), ("unknown", "Unknown"))
    return {
        "destination": destination,
        "kind_label": _kind_label(destination.kind),
        "health_badge": badge,
        "health_label": label,
        "secrets_unreadable": destination_secret_names(destination) is None,
        "connects": _connects(destination),
    }


@login_required
@require_GET
def destinations_page(request: HttpRequest) -> HttpResponse:
    viewer = viewer_for_request(request)
    rows = [_row(destination) for destination in destinations_visible_to(viewer)]
    return render(
        request,
        "destinations/destinations.html",
        {
            "own": [row for row in rows if not row["destination"].is_system],
            "system": [row for row in rows if row["destination"].is_system],
            "operator": viewer.operator,
            "kinds": [(kind, _kind_label(kind)) for kind in KINDS],
        },
    )


@never_cache
@sensitive_post_parameters()  # an error report must not show the secrets entered
@login_required
@require_http_methods(["GET", "POST"])
def destination_new(request: HttpRequest) -> HttpResponse:
    """A new destination of the kind the query names (``?kind=s3``)."""
    kind = request.GET.get("kind", "")
    if kind not in KINDS:
        messages.error(request, "Choose the kind of destination to add.")
        return redirect("destinations")
    viewer = viewer_for_request(request)
    form = DestinationForm(
        request.POST if request.method == "POST" else None,
        kind=kind_class(kind),
        may_make_system_wide=viewer.operator,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            destination = destination_create(
                kind=kind,
                name=data["name"],
                owner=destination_owner(viewer=viewer, system_wide=data.get("system_wide", False)),
                settings=form.settings_values(),
                secrets=form.secrets_given(),
                folder_template=data["folder_template"],
                collision_policy=data["collision_policy"],
                enabled=data["enabled"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved {destination.name}. Test it to see that it works.")
            return redirect("destinations")
    context = {"form": form, "kind": kind, "kind_label": _kind_label(kind), "destination": None}
    return render(
        request,
        "destinations/destination_form.html",
        context,
        status=400 if request.method == "POST" else 200,
    )


@never_cache
@sensitive_post_parameters()
@login_required
@require_http_methods(["GET", "POST"])
def destination_edit(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination(request, destination_id)
    form = DestinationForm(
        request.POST if request.method == "POST" else None,
        kind=kind_class(destination.kind),
        destination=destination,
    )
    if request.method == "POST" and form.is_valid():
        try:
            destination_update(destination=destination, **form.changes())
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved {destination.name}.")
            return redirect("destinations")
    context = {
        "form": form,
        "kind": destination.kind,
        "kind_label": _kind_label(destination.kind),
        "destination": destination,
    }
    return render(
        request,
        "destinations/destination_form.html",
        context,
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def destination_test(request: HttpRequest, destination_id: int) -> HttpResponse:
    """Check the destination now (connect, sign in, write and remove a test file)."""
    outcome = health.destination_test(destination=_destination(request, destination_id))
    if outcome.healthy:
        messages.success(request, outcome.message)
    else:
        messages.error(request, f"{outcome.message} ({outcome.kind})")
    return redirect("destinations")


@login_required
@require_POST
def destination_remove(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination(request, destination_id)
    try:
        destination_delete(destination=destination)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Removed {destination.name}. The files it received stay where they are.")
    return redirect("destinations")
