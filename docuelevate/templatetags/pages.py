"""Template tags every page shares: ``{% load pages %}``.

Registered in ``settings.TEMPLATES`` (``docuelevate`` holds no models and is not an app).
A page builds its links with ``{% url %}`` and these tags, never with a written path, so
a route can move without a page pointing at the old one.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(context: dict[str, Any], url_name: str, label: str) -> SafeString:
    """A header link to the page ``url_name``, marked as the current page when the request
    is for it or for a page under it (``/files/12`` is under Files)."""
    href = reverse(url_name)
    request = context.get("request")
    path = getattr(request, "path", "")
    current = path == href or (href != "/" and path.startswith(href.rstrip("/") + "/"))
    return format_html(
        '<a class="nav-link" href="{}"{}>{}</a>',
        href,
        SafeString(' aria-current="page"') if current else "",
        label,
    )


@register.inclusion_tag("partials/status_badge.html")
def status_badge(status: Any, label: Any = None) -> dict[str, Any]:
    """The one status badge: a pill whose colour follows ``status`` (static/src/app.css keys
    it on ``data-status``, so a script that changes the value changes the colour too)."""
    value = str(status)
    return {"status": value, "label": value.replace("_", " ").capitalize() if label is None else label}
