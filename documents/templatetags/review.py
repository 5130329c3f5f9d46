"""The navigation's link to the review inbox, with how many documents wait."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.access import viewer_for_request
from docuelevate.templatetags.pages import nav_link
from documents.organise.review import review_count

register = template.Library()


@register.simple_tag(takes_context=True)
def review_nav_link(context: dict[str, Any], label: str = "Review") -> SafeString:
    """``nav_link`` to /review, with a badge counting the documents waiting (one query)."""
    request: HttpRequest | None = context.get("request")
    signed_in = request is not None and request.user.is_authenticated
    count = review_count(viewer=viewer_for_request(request)) if request is not None and signed_in else 0
    if not count:
        return nav_link(context, "review", label)
    badge = format_html(
        '{} <span class="chip" data-review-count="{}" aria-label="{} waiting">{}</span>',
        label, count, count, count,
    )  # fmt: skip
    return nav_link(context, "review", badge)
