"""One access line per request, and a request id on every line the request writes.

The id comes from the reverse proxy's ``X-Request-ID`` when it is a sane token (nginx's
``$request_id``, Traefik, a load balancer), so one id follows a request through proxy and
application logs; otherwise one is made here. Either way the response returns it, so a
user reporting a problem can quote it. A client could send an id of its choosing, but it
only labels its own request's lines.

The access line names the route (the URL pattern's name), never the raw path: paths carry
password-reset keys and document ids, and a route is what an operator groups by.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

from ops.logging import clear_log_context, set_log_context
from ops.middleware import route_label

logger = logging.getLogger("docuelevate.request")

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and a few separators, as request ids from proxies and tracers look; any
# other value (too long, spaces, quotes, control characters) is replaced, not logged.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/@-]{0,127}")


def incoming_request_id(request: HttpRequest) -> str | None:
    """The proxy's request id, if it is one we may log and send back."""
    value = request.headers.get(REQUEST_ID_HEADER, "")
    return value if SANE_REQUEST_ID.fullmatch(value) else None


class RequestLogMiddleware:
    """Sets the request's log context, adds ``X-Request-ID`` to the response, and writes one
    ``docuelevate.request`` line with method, route, status and duration.

    Placed early (after SecurityMiddleware), so the id covers every later middleware: a
    rate-limited or refused request is logged with its id too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = incoming_request_id(request) or uuid.uuid4().hex
        started = time.perf_counter()
        # Not a block that ends with this call: Django logs a refused request (django.request
        # "Not Found: …") after the last middleware returned; the context ends when the
        # response is closed (request_finished, below).
        set_log_context(request_id=request_id, request=request)
        response = self.get_response(request)
        # Until the view returned; a streamed download goes on after this.
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        # The same label as the request metrics (ops.middleware), so the two can be joined.
        route = route_label(request)
        logger.info(
            "%s %s %s in %.1f ms",
            request.method,
            route,
            response.status_code,
            duration_ms,
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        response[REQUEST_ID_HEADER] = request_id
        return response


request_finished.connect(clear_log_context, dispatch_uid="ops_requestlog_clear")
