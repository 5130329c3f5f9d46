"""The probes' fast path and the request timings for /metrics (ops.metrics).

Both sit at the very top of MIDDLEWARE. The probes must: Kubernetes sends them with
``Host: <pod-ip>:<port>``, which ALLOWED_HOSTS refuses (CommonMiddleware, CSRF and the
HTTPS redirect all read the host), and over plain HTTP, which SECURE_PROXY would redirect.
Answered here, they touch neither; they are also not timed, as they would drown the routes
people use.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from ops import metrics
from ops.api import views

PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/api/diagnostic/healthz/live": views.healthz_live,
    "/api/diagnostic/healthz/ready": views.healthz_ready,
}
# Anything else a client may send as a method is one label value, not one each.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ProbeMiddleware:
    """Answers the liveness and readiness probes before any other middleware sees them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info.rstrip("/"))
        if probe is None:
            return self.get_response(request)
        return probe(request)


def route_label(request: HttpRequest) -> str:
    """The route's name ("api-file"), never the path ("/api/files/123"), so one label per route.

    A route without a name is labelled by its pattern ("api/whoami/"); a request no route
    matches is "unmatched", whatever its path, so scanners cannot grow the label set.
    """
    match = getattr(request, "resolver_match", None)
    if match is None:
        # A middleware answered before the URL was resolved (a redirect, a 429): resolve it here.
        if request.path_info.startswith(f"/{settings.STATIC_URL.lstrip('/')}"):
            return "static"
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return "unmatched"
    return match.view_name if match.url_name else match.route


class RequestMetricsMiddleware:
    """Times every request into ``docuelevate_http_request_duration_seconds``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.observe_request(
            route=route_label(request),
            method=str(method),
            status=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response
