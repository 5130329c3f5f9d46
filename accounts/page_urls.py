"""Account pages outside /accounts/ (which belongs to allauth): the API tokens page."""

from __future__ import annotations

from django.urls import URLPattern, path

from accounts import pages
from docuelevate.bounds import register_id_converter

register_id_converter()

urlpatterns: list[URLPattern] = [
    path("api-tokens", pages.api_tokens, name="api-tokens"),
    path("api-tokens/<id:token_id>/revoke", pages.api_token_revoke, name="api-token-revoke"),
]
