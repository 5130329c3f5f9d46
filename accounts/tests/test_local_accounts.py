"""Local accounts through allauth's pages: log in, log out, passwords, sign-up, verification."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "an-entirely-new-passphrase-42"


def log_in(client, login: str, password: str = DEFAULT_PASSWORD, next_url: str = ""):
    return client.post(f"/accounts/login/{next_url}", {"login": login, "password": password})


def signed_in_username(client) -> str | None:
    response = client.get("/api/whoami")
    return response.json()["display_name"] if response.status_code == 200 else None


def test_the_login_page_offers_the_form_and_password_reset_but_no_sign_up_by_default(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="login"' in page
    assert 'name="password"' in page
    assert "/accounts/password/reset/" in page
    assert "/accounts/signup/" not in page
    assert "DocuElevate" in page  # the site's layout, not allauth's bare page


@pytest.mark.parametrize("login_with", ["username", "email"])
def test_a_user_logs_in_with_username_or_email_and_lands_where_they_wanted(client, owner, login_with):
    response = log_in(client, getattr(owner, login_with), next_url="?next=/api/whoami")
    assert response.status_code == 302
    assert response["Location"] == "/api/whoami"
    assert signed_in_username(client) == "owner"


def test_a_wrong_password_is_refused_with_a_message_and_no_session(client, owner):
    response = log_in(client, "owner", password="not-the-password")
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert signed_in_username(client) is None


def test_an_inactive_user_cannot_log_in(client, owner):
    owner.is_active = False
    owner.save()
    log_in(client, "owner")
    assert signed_in_username(client) is None


def test_log_out_ends_the_session(client, owner):
    log_in(client, "owner")
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert signed_in_username(client) is None


def test_a_signed_in_user_changes_their_password(client, owner):
    log_in(client, "owner")
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": DEFAULT_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_a_forgotten_password_is_reset_through_the_mailed_link(client, owner):
    response = client.post("/accounts/password/reset/", {"email": owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    assert message.subject.startswith("[DocuElevate]")
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", str(message.body))
    assert link, message.body
    # The key in the mail leads to a form (after a redirect that hides the key from referrers).
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert log_in(client, "owner", password=NEW_PASSWORD).status_code == 302
    assert signed_in_username(client) == "owner"


def test_a_reset_for_an_unknown_address_reveals_nothing(client):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302  # the same answer as for a known address
    assert all("/accounts/password/reset/key/" not in message.body for message in mail.outbox)


def test_a_reset_for_an_unknown_address_mails_nobody_unless_the_operator_asks_for_it(client, settings, owner):
    # Else anyone could have "no account here" mails sent to any address, ten a minute.
    client.post("/accounts/password/reset/", {"email": "stranger@example.com"})
    assert mail.outbox == []
    client.post("/accounts/password/reset/", {"email": owner.email})
    assert [message.to for message in mail.outbox] == [[owner.email]]

    settings.ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = True
    client.post("/accounts/password/reset/", {"email": "newcomer@example.com"})
    assert [message.to for message in mail.outbox] == [[owner.email], ["newcomer@example.com"]]


def test_sign_up_is_closed_unless_the_operator_opens_it(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "mallory",
            "email": "m@example.com",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert "closed" in response.content.decode().lower()
    assert not User.objects.filter(username="mallory").exists()


def test_with_sign_up_open_a_visitor_creates_an_account_and_gets_a_verification_mail(client, settings):
    settings.ALLOW_LOCAL_SIGNUP = True
    assert "/accounts/signup/" in client.get("/accounts/login/").content.decode()
    response = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert not user.is_staff
    assert any("/accounts/confirm-email/" in message.body for message in mail.outbox)


def test_sign_up_refuses_a_weak_password(client, settings):
    settings.ALLOW_LOCAL_SIGNUP = True
    response = client.post(
        "/accounts/signup/",
        {"username": "weak", "email": "weak@example.com", "password1": "password", "password2": "password"},
    )
    assert response.status_code == 200
    assert not User.objects.filter(username="weak").exists()


def test_with_mandatory_verification_a_new_account_is_usable_only_after_confirming(client, settings):
    settings.ALLOW_LOCAL_SIGNUP = True
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    client.post(
        "/accounts/signup/",
        {
            "username": "careful",
            "email": "careful@example.com",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert signed_in_username(client) is None
    log_in(client, "careful", password=NEW_PASSWORD)
    assert signed_in_username(client) is None

    link = re.search(r"http://testserver(/accounts/confirm-email/\S+)", str(mail.outbox[-1].body))
    assert link
    client.post(link.group(1))
    log_in(client, "careful", password=NEW_PASSWORD)
    assert signed_in_username(client) == "careful"


def test_the_page_header_offers_log_out_and_password_change_to_a_signed_in_user(client, owner):
    log_in(client, "owner")
    page = client.get("/").content.decode()
    assert 'action="/accounts/logout/"' in page
    assert "/accounts/password/change/" in page
    assert "Log in" not in page
