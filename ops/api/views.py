"""Thin views for the probes, /api/health and /metrics; the work is in ops.health and ops.metrics."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.views import UNAUTHENTICATED
from docuelevate.addresses import client_ip
from ops import health
from ops.api.serializers import HealthOutputSerializer

# Answered by ops.middleware.ProbeMiddleware before anything else; listed in ops.api.urls too so
# they resolve and have names.


@never_cache
@require_safe
def healthz_live(request: HttpRequest) -> HttpResponse:
    """The process runs and answers; nothing else is touched, so a slow database never
    gets a healthy process restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def healthz_ready(request: HttpRequest) -> HttpResponse:
    """Whether to send traffic here: the database answers (Redis is reported, not required)."""
    report = health.readiness()
    return JsonResponse(report.body, status=report.http_status)


class HealthView(APIView):
    """Every dependency at a glance, for a signed-in user or an API token."""

    @extend_schema(
        operation_id="health",
        summary="Health of the installation and its services (also at /api/health)",
        responses={
            (200, "application/json"): HealthOutputSerializer,
            (401, "application/json"): UNAUTHENTICATED,
            (503, "application/json"): OpenApiResponse(
                HealthOutputSerializer, description="The database does not answer."
            ),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        report = health.health()
        body = HealthOutputSerializer(report.body).data
        return Response(body, status=report.http_status, headers={"Cache-Control": "no-store"})


@extend_schema(exclude=True)  # the same operation as /api/diagnostic/health, documented once
class HealthAliasView(HealthView):
    pass


def metrics_allowed(request: HttpRequest) -> bool | None:
    """Whether this caller may read /metrics; None when /metrics is closed to everyone.

    Open to the right ``Authorization: Bearer <METRICS_TOKEN>``, or from an address in
    METRICS_ALLOWED_IPS (as docuelevate.addresses.client_ip sees it, so behind the declared
    proxy the forwarded client, never the proxy).
    """
    token = settings.METRICS_TOKEN
    allowed = settings.METRICS_ALLOWED_IPS
    if not token and not allowed:
        return None
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    address = client_ip(request)
    if address is None:
        return False
    caller = ipaddress.ip_address(address)
    return any(caller in ipaddress.ip_network(entry, strict=False) for entry in allowed)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    allowed = metrics_allowed(request)
    if allowed is None:
        # Closed: as if there were no such page, rather than inviting guesses.
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    if not allowed:
        return HttpResponse(
            "Forbidden: send Authorization: Bearer <METRICS_TOKEN> or scrape from METRICS_ALLOWED_IPS.\n",
            status=403,
            content_type="text/plain",
        )
    # Imported here, not at the top: loading the URL map (manage.py check) must not set up
    # the metrics folder. Web workers have it already, through ops.middleware.
    from ops.metrics import scrape

    # The classic text format every Prometheus reads (our names need nothing newer).
    return HttpResponse(scrape(), content_type="text/plain; version=0.0.4; charset=utf-8")
