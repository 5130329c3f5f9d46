"""Gmail and Microsoft 365 mailboxes signing in with OAuth 2.0: the providers' token
endpoints replayed from recordings at our client boundary, the IMAP sign-in (SASL XOAUTH2)
checked by a real Dovecot that accepts exactly the access tokens the recordings hand out."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from django.db import connection

from destinations.kinds.oauth import refresh_token_in_use, token_fingerprint
from docuelevate.env import EnvError
from docuelevate.errors import InvalidInput
from docuelevate.settings import _imap_mailbox
from documents.models import Document, FailureKind
from documents.tests.http_replay import ReplayServer, assert_matches_recording
from sources.kinds.imap import ImapKind
from sources.kinds.imap_oauth import Auth
from sources.models import Source, SourceKind
from sources.polling import PollOutcome, PollStatus, source_poll
from sources.services import source_create, system_sources_sync
from sources.tests import mails
from sources.tests.conftest import RECORDINGS

pytestmark = pytest.mark.django_db

GOOGLE_CLIENT_ID = "1234567890-docuelevate.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-docuelevate-client-secret"
MICROSOFT_CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
GIVEN_TOKEN = "1//09-given-refresh-token-of-the-mailbox"
GMAIL_ACCESS_TOKEN = "ya29.a0AfB_recorded-gmail-access-token-1"
OUTLOOK_ACCESS_TOKENS = (
    "EwBwA8l6BAAU-recorded-outlook-access-token-1",
    "EwBwA8l6BAAU-recorded-outlook-access-token-2",
)
ROTATED = ("M.C507_BAY.0.U.-rotated-imap-refresh-token-1", "M.C507_BAY.0.U.-rotated-imap-refresh-token-2")


@pytest.fixture
def oauth_mailbox(oauth_dovecot_server, settings, document_storage, operator, replay: ReplayServer):
    """An account on the XOAUTH2 Dovecot, the token endpoints of Google and Microsoft
    answered by ``replay``."""
    settings.IMAP_CA_BUNDLE = str(oauth_dovecot_server.tls.ca_file)
    settings.CLOUD_API_ROUTES = {
        "https://oauth2.googleapis.com": replay.url,
        "https://login.microsoftonline.com": replay.url,
    }
    return oauth_dovecot_server.add_user("scanner")


@pytest.fixture
def make_oauth_source(oauth_dovecot_server, oauth_mailbox):
    def make(auth: str, **settings) -> Source:
        app = {"client_id": GOOGLE_CLIENT_ID} if auth == Auth.GOOGLE else {"client_id": MICROSOFT_CLIENT_ID}
        secrets = {"refresh_token": GIVEN_TOKEN}
        if auth == Auth.GOOGLE:
            secrets["client_secret"] = GOOGLE_CLIENT_SECRET
        return source_create(
            kind=SourceKind.IMAP,
            owner=None,
            name=f"{auth} mailbox",
            settings={
                "auth": auth,
                # The provider's own server is the default; the test's Dovecot stands in for it.
                "host": oauth_dovecot_server.host,
                "port": oauth_dovecot_server.port,
                "username": oauth_mailbox.username,
                **app,
                **settings,
            },
            secrets=secrets,
        )

    return make


def token_request(replay: ReplayServer, index: int = 0) -> dict[str, list[str]]:
    return parse_qs(replay.received[index].body.decode())


def failed(source: Source, kind: FailureKind) -> PollOutcome:
    outcome = source_poll(source_id=source.pk)
    assert outcome.status == PollStatus.FAILED
    assert outcome.error_kind == kind, outcome.error
    source.refresh_from_db()
    assert (source.last_error, source.last_error_kind) == (outcome.error, kind)
    return outcome


def stored_secrets_text(source: Source) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM sources_source WHERE id = %s", [source.pk])
        return str(cursor.fetchone()[0])


def test_a_gmail_mailbox_signs_in_with_the_access_token_of_its_refresh_token_and_takes_a_pdf(
    oauth_dovecot_server, oauth_mailbox, make_oauth_source, token_introspection, replay, operator
):
    recording = replay.play("google_token_refresh", RECORDINGS)
    token_introspection.grant(GMAIL_ACCESS_TOKEN, oauth_mailbox.username)
    oauth_dovecot_server.append(oauth_mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))
    source = make_oauth_source(Auth.GOOGLE)

    outcome = source_poll(source_id=source.pk)

    assert (outcome.status, outcome.documents) == (PollStatus.DONE, 1), outcome.error
    document = Document.objects.get()
    assert (document.owner, document.original_filename) == (operator, "invoice.pdf")
    (received,) = replay.received
    assert_matches_recording(received, recording["exchanges"][0]["request"])
    assert token_request(replay) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [GIVEN_TOKEN],
        "client_id": [GOOGLE_CLIENT_ID],
        "client_secret": [GOOGLE_CLIENT_SECRET],
    }
    # Dovecot was handed the access token, in an XOAUTH2 sign-in it accepted.
    assert token_introspection.asked == [GMAIL_ACCESS_TOKEN]
    assert "\\Seen" in oauth_dovecot_server.messages(oauth_mailbox).messages[0].flags


def test_a_microsoft_mailbox_stores_each_rotated_refresh_token_sealed_and_signs_in_with_it_next_time(
    oauth_dovecot_server, oauth_mailbox, make_oauth_source, token_introspection, replay
):
    recording = replay.play("microsoft_token_rotated", RECORDINGS)
    for access_token in OUTLOOK_ACCESS_TOKENS:
        token_introspection.grant(access_token, oauth_mailbox.username)
    source = make_oauth_source(Auth.MICROSOFT)
    oauth_dovecot_server.append(oauth_mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))

    assert source_poll(source_id=source.pk).documents == 1

    first = token_request(replay, 0)
    assert first["refresh_token"] == [GIVEN_TOKEN]
    assert first["scope"] == ["https://outlook.office.com/IMAP.AccessAsUser.All offline_access"]
    assert first["client_id"] == [MICROSOFT_CLIENT_ID]
    assert "client_secret" not in first  # a public client has none
    source.refresh_from_db()
    assert refresh_token_in_use(source.secrets) == ROTATED[0]
    assert source.secrets["refresh_token"] == GIVEN_TOKEN
    assert source.secrets["renewed_from"] == token_fingerprint(GIVEN_TOKEN)
    assert ROTATED[0] not in stored_secrets_text(source)

    oauth_dovecot_server.append(
        oauth_mailbox, "INBOX", mails.mail_bytes(mails.mail_with_pdf(filename="second.pdf"))
    )
    assert source_poll(source_id=source.pk).documents == 1

    assert token_request(replay, 1)["refresh_token"] == [ROTATED[0]]
    source.refresh_from_db()
    assert refresh_token_in_use(source.secrets) == ROTATED[1]
    assert token_introspection.asked == list(OUTLOOK_ACCESS_TOKENS)
    for received, exchange in zip(replay.received, recording["exchanges"], strict=True):
        assert_matches_recording(received, exchange["request"])


def test_the_environments_mailbox_keeps_its_rotated_refresh_token_until_its_variable_changes(
    oauth_dovecot_server, oauth_mailbox, token_introspection, replay, settings
):
    replay.play("microsoft_token_rotated", RECORDINGS)
    for access_token in OUTLOOK_ACCESS_TOKENS:
        token_introspection.grant(access_token, oauth_mailbox.username)
    mailbox = {
        "number": 1,
        "host": oauth_dovecot_server.host,
        "port": oauth_dovecot_server.port,
        "ssl": True,
        "username": oauth_mailbox.username,
        "password": "",
        "auth": Auth.MICROSOFT,
        "oauth_client_id": MICROSOFT_CLIENT_ID,
        "oauth_client_secret": "",
        "oauth_refresh_token": GIVEN_TOKEN,
        "oauth_tenant_id": "common",
        "poll_interval_minutes": 5,
        "delete_after_process": False,
    }
    settings.IMAP_MAILBOXES = [mailbox]
    (source,) = system_sources_sync()
    assert source_poll(source_id=source.pk).status == PollStatus.DONE

    system_sources_sync()  # beat's next minute: the variables have not changed
    source.refresh_from_db()
    assert refresh_token_in_use(source.secrets) == ROTATED[0]
    assert source_poll(source_id=source.pk).status == PollStatus.DONE
    assert token_request(replay, 1)["refresh_token"] == [ROTATED[0]]

    settings.IMAP_MAILBOXES = [{**mailbox, "oauth_refresh_token": "a-new-token-in-the-environment"}]
    system_sources_sync()
    source.refresh_from_db()
    assert refresh_token_in_use(source.secrets) == "a-new-token-in-the-environment"
    assert "renewed_refresh_token" not in source.secrets


def test_a_revoked_refresh_token_fails_the_mailbox_as_configuration_asking_to_sign_in_again(
    oauth_mailbox, make_oauth_source, token_introspection, replay
):
    replay.play("google_token_invalid_grant", RECORDINGS)
    source = make_oauth_source(Auth.GOOGLE)

    outcome = failed(source, FailureKind.CONFIGURATION)

    assert "invalid_grant" in outcome.error
    assert "sign in again" in outcome.error
    for secret in (GIVEN_TOKEN, GOOGLE_CLIENT_SECRET):
        assert secret not in outcome.error
    assert token_introspection.asked == []  # no sign-in was tried with nothing to sign in with


def test_a_token_endpoint_out_of_service_is_a_temporary_failure(
    oauth_mailbox, make_oauth_source, token_introspection, replay
):
    replay.play("microsoft_token_unavailable", RECORDINGS)
    source = make_oauth_source(Auth.MICROSOFT, tenant_id="contoso.onmicrosoft.com")

    outcome = failed(source, FailureKind.TEMPORARY)

    assert "HTTP 503" in outcome.error
    assert len(replay.received) == 1  # to the tenant's own endpoint, as recorded
    assert token_introspection.asked == []


def test_an_access_token_the_mail_server_refuses_is_a_configuration_error(
    oauth_mailbox, make_oauth_source, token_introspection, replay
):
    # Google gave a token, but the mailbox does not take it (IMAP off, or another account).
    replay.play("google_token_refresh", RECORDINGS)
    source = make_oauth_source(Auth.GOOGLE)

    outcome = failed(source, FailureKind.CONFIGURATION)

    assert "refused the Google sign-in of scanner" in outcome.error
    assert token_introspection.asked == [GMAIL_ACCESS_TOKEN]
    assert GMAIL_ACCESS_TOKEN not in outcome.error


# --- settings ------------------------------------------------------------------------------


def clean(settings: dict, secrets: dict) -> tuple[dict, dict]:
    return ImapKind.clean({"username": "scans@example.com", **settings}, secrets, system_wide=True)


def test_gmail_and_microsoft_365_mailboxes_need_no_server_and_microsoft_signs_in_through_common():
    google, google_secrets = clean(
        {"auth": "google", "client_id": GOOGLE_CLIENT_ID},
        {"client_secret": GOOGLE_CLIENT_SECRET, "refresh_token": GIVEN_TOKEN, "password": "left over"},
    )
    assert (google["host"], google["port"], google["ssl"]) == ("imap.gmail.com", 993, True)
    assert google_secrets == {"client_secret": GOOGLE_CLIENT_SECRET, "refresh_token": GIVEN_TOKEN}
    microsoft, _ = clean(
        {"auth": "microsoft", "client_id": MICROSOFT_CLIENT_ID}, {"refresh_token": GIVEN_TOKEN}
    )
    assert (microsoft["host"], microsoft["tenant_id"]) == ("outlook.office365.com", "common")
    password, _ = clean({"host": "mail.example.com"}, {"password": "secret"})
    assert password["auth"] == "password"


@pytest.mark.parametrize(
    ("mailbox_settings", "secrets", "reason"),
    [
        ({"auth": "yahoo"}, {"refresh_token": GIVEN_TOKEN}, "auth is one of password, google, microsoft"),
        ({"auth": "google", "client_id": GOOGLE_CLIENT_ID}, {"refresh_token": GIVEN_TOKEN}, "client secret"),
        ({"auth": "microsoft"}, {"refresh_token": GIVEN_TOKEN}, "client id"),
        ({"auth": "microsoft", "client_id": MICROSOFT_CLIENT_ID}, {}, "refresh token"),
        (
            {"auth": "microsoft", "client_id": MICROSOFT_CLIENT_ID, "tenant_id": "../evil?"},
            {"refresh_token": GIVEN_TOKEN},
            "tenant_id",
        ),
        ({"host": "mail.example.com"}, {"refresh_token": GIVEN_TOKEN}, "password"),
    ],
)
def test_a_mailbox_missing_what_its_sign_in_needs_is_refused_with_the_reason(
    mailbox_settings, secrets, reason
):
    with pytest.raises(InvalidInput) as error:
        clean(mailbox_settings, secrets)
    assert reason in error.value.message


def test_the_environment_describes_an_oauth_mailbox_with_imap_oauth_variables(monkeypatch):
    for name, value in {
        "IMAP2_AUTH": "microsoft",
        "IMAP2_USERNAME": "scans@contoso.com",
        "IMAP2_OAUTH_CLIENT_ID": MICROSOFT_CLIENT_ID,
        "IMAP2_OAUTH_REFRESH_TOKEN": GIVEN_TOKEN,
        "IMAP2_OAUTH_TENANT_ID": "contoso.onmicrosoft.com",
    }.items():
        monkeypatch.setenv(name, value)
    mailbox = _imap_mailbox(2)
    assert mailbox is not None
    assert (mailbox["host"], mailbox["auth"], mailbox["oauth_tenant_id"]) == (
        "outlook.office365.com",
        "microsoft",
        "contoso.onmicrosoft.com",
    )
    monkeypatch.setenv("IMAP2_AUTH", "basic")
    with pytest.raises(EnvError, match="IMAP2_AUTH"):
        _imap_mailbox(2)
