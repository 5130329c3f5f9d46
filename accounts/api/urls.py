"""Routes of the accounts API under /api/.

Each route answers with and without a trailing slash: clients were written against both
spellings, and Django's APPEND_SLASH redirect would turn a POST or DELETE into an error.
The second spelling is left out of the schema so each operation is documented once.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from accounts.api import views


def _unlisted(view: type[APIView]) -> type[APIView]:
    """The same view, hidden from the OpenAPI schema (for the other spelling of a route)."""
    return extend_schema(exclude=True)(type(f"Unlisted{view.__name__}", (view,), {}))


def _both_spellings(route: str, view: type[APIView], name: str) -> list[URLPattern | URLResolver]:
    other = route.removesuffix("/") if route.endswith("/") else f"{route}/"
    return [path(route, view.as_view(), name=name), path(other, _unlisted(view).as_view())]


urlpatterns: list[URLPattern | URLResolver] = [
    *_both_spellings("api-tokens/", views.ApiTokenListView, "api-token-list"),
    *_both_spellings("api-tokens/<str:token_id>", views.ApiTokenDetailView, "api-token-detail"),
    *_both_spellings("whoami", views.WhoAmIView, "whoami"),
    *_both_spellings("mobile/whoami", views.MobileWhoAmIView, "mobile-whoami"),
    *_both_spellings("mobile/generate-token", views.MobileGenerateTokenView, "mobile-generate-token"),
]
