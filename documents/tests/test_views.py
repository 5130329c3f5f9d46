from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_landing_page_invites_an_anonymous_visitor_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"DocuElevate" in response.content
    assert b"Log in" in response.content


@pytest.mark.django_db
def test_landing_page_offers_operators_the_admin(client, operator):
    client.force_login(operator)
    response = client.get("/")
    assert b"operator" in response.content
    assert b'href="/admin/"' in response.content


@pytest.mark.django_db
def test_admin_is_served_and_asks_for_a_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    # The admin's sign-in is the site's (accounts.pages.sign_in.admin_login).
    assert client.get("/admin/login/", follow=True).status_code == 200


@pytest.mark.django_db
def test_static_files_are_linked_by_their_hashed_name(client):
    response = client.get("/")
    assert b"/static/css/app." in response.content
    assert b'/static/css/app.css"' not in response.content
