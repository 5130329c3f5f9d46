"""Routes of the destinations' pages, at the site's root."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from destinations.pages import destinations, oauth
from docuelevate.bounds import register_id_converter

register_id_converter()

urlpatterns: list[URLPattern | URLResolver] = [
    path("destinations", destinations.destinations_page, name="destinations"),
    path("destinations/new", destinations.destination_new, name="destination-new"),
    path("destinations/<id:destination_id>", destinations.destination_edit, name="destination-edit"),
    path("destinations/<id:destination_id>/test", destinations.destination_test, name="destination-test"),
    path(
        "destinations/<id:destination_id>/remove", destinations.destination_remove, name="destination-remove"
    ),
    # Connecting a cloud drive: to the provider, and back. The callback's address, under
    # PUBLIC_BASE_URL, is the redirect URI registered with each provider.
    path("destinations/<id:destination_id>/connect", oauth.connect, name="destination-connect"),
    path("destinations/connect/<str:kind>/callback", oauth.callback, name="destination-connect-callback"),
]
