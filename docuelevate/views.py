"""Error pages: JSON under /api/, where clients parse ``{"detail": ...}``, HTML elsewhere.

DRF views answer their own errors (docuelevate.api); these handlers catch the rest: an
unknown /api/ route, a body Django refused, an exception outside DRF. No page or answer
ever shows exception text, which can carry paths, queries or secrets.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.templatetags.static import static

# Everything under this path is the API: JSON answers, tokens accepted (accounts.authentication).
API_PATH_PREFIX = "/api/"


def error_response(request: HttpRequest, *, status: int, detail: str) -> HttpResponse:
    if request.path_info.startswith(API_PATH_PREFIX):
        return JsonResponse({"detail": detail}, status=status)
    # No request context: the 500 page must render even when a context processor is what broke.
    html = render_to_string("error.html", {"status": status, "detail": detail})
    return HttpResponse(html, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(request, status=400, detail="The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(request, status=403, detail="You do not have permission to do this.")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(request, status=404, detail="Not found.")


def payload_too_large(request: HttpRequest) -> HttpResponse:
    limit = settings.MAX_REQUEST_BODY_SIZE
    return error_response(
        request, status=413, detail=f"The request body is larger than the limit of {limit} bytes."
    )


def too_many_requests(request: HttpRequest, *, retry_after: int) -> HttpResponse:
    """429 with ``Retry-After``: the client's budget is spent until the window resets."""
    response = error_response(
        request, status=429, detail=f"Too many requests; try again in {retry_after} seconds."
    )
    response["Retry-After"] = str(retry_after)
    return response


# Seconds a client is asked to wait when the database is away: a restart or failover.
DATABASE_RETRY_AFTER = 10


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with ``Retry-After``: the database is away for now; the same request may succeed
    in a moment, and nothing of it was kept."""
    response = error_response(
        request, status=503, detail="The database is unavailable for the moment; try again shortly."
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(request, status=500, detail="Something went wrong on our side; it has been logged.")


def favicon(request: HttpRequest) -> HttpResponse:
    """The icon, under the hashed name whitenoise serves it by (cached for a year)."""
    return redirect(static("favicon.svg"), permanent=False)
