"""The e-mail kind against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import datetime
import ipaddress
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest

from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    DocumentFacts,
    LocalFile,
)
from destinations.kinds.email import EmailKind, Security
from destinations.tests.conftest import sha256
from destinations.tests.servers.base import free_port
from destinations.tests.servers.smtp import SmtpServer
from docuelevate.addresses import HostRefused
from docuelevate.errors import InvalidInput

CONTENT = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
FACTS = DocumentFacts(
    delivery_key="docuelevate.0123abcd.7.5e3f",
    title="Electricity bill March",
    document_type="Invoice",
    correspondent="ACME Power",
    created=datetime.date(2024, 3, 12),
)


def local_file(tmp_path, content: bytes = CONTENT, about: DocumentFacts | None = FACTS) -> LocalFile:
    path = tmp_path / "file.pdf"
    path.write_bytes(content)
    return LocalFile(path=path, size=len(content), sha256=sha256(content), facts=about or DocumentFacts())


def email_kind(server: SmtpServer, tls_files=None, **options) -> EmailKind:
    security = (
        Security.TLS if server.implicit_tls else Security.STARTTLS if server.starttls else Security.NONE
    )
    settings = {
        "host": server.host,
        "port": server.port,
        "security": security,
        "sender": "DocuElevate <docuelevate@example.org>",
        "recipient": "archive@example.org",
        "ssl_context": tls_files.client_context() if tls_files else None,
    }
    if server.username:
        settings.update(username=server.username, password=server.password)
    return EmailKind(**{**settings, **options})


def parsed(raw: bytes):
    return BytesParser(policy=default_policy).parsebytes(raw)


def test_a_document_is_mailed_over_starttls_signed_in_with_the_pdf_attached_byte_for_byte(
    smtp_starttls_server, tls_files, tmp_path
):
    with email_kind(smtp_starttls_server, tls_files) as kind:
        uploaded = kind.upload(local_file(tmp_path), "2024/Invoice/2024-03-12_Invoice.pdf")

    (received,) = smtp_starttls_server.wait_for_messages(1)
    assert (received.over_tls, received.login) == (True, "mailer")
    assert (received.sender, received.recipients) == ("docuelevate@example.org", ["archive@example.org"])
    message = parsed(received.data)
    (attachment,) = message.iter_attachments()
    assert attachment.get_content() == CONTENT
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "2024-03-12_Invoice.pdf"
    assert message["Subject"] == "Electricity bill March (Invoice, ACME Power, 2024-03-12)"
    assert message["From"] == "DocuElevate <docuelevate@example.org>"
    assert message["To"] == "archive@example.org"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Correspondent: ACME Power" in body
    # The Message-ID is the delivery's own, the same on every attempt.
    assert message["Message-ID"] == "<docuelevate.0123abcd.7.5e3f@example.org>"
    assert uploaded.remote_id == "<docuelevate.0123abcd.7.5e3f@example.org>"
    assert uploaded.path == "2024/Invoice/2024-03-12_Invoice.pdf"


def test_a_document_is_mailed_over_tls_from_the_first_byte(tls_files, tmp_path):
    with (
        SmtpServer(tls=tls_files, implicit_tls=True, username="mailer") as server,
        email_kind(server, tls_files) as kind,
    ):
        kind.upload(local_file(tmp_path), "doc.pdf")
        (received,) = server.wait_for_messages(1)
    assert (received.over_tls, received.login) == (True, "mailer")
    (attachment,) = parsed(received.data).iter_attachments()
    assert attachment.get_content() == CONTENT


def test_a_relay_without_tls_or_login_gets_the_mail_in_plain_text(smtp_server, tmp_path):
    with email_kind(smtp_server) as kind:
        kind.upload(local_file(tmp_path, about=None), "doc.pdf")
    (received,) = smtp_server.wait_for_messages(1)
    assert (received.over_tls, received.login) == (False, None)
    assert parsed(received.data)["Subject"] == "doc.pdf"


def test_a_refused_password_is_a_configuration_error_that_names_no_secret(
    smtp_starttls_server, tls_files, tmp_path
):
    kind = email_kind(smtp_starttls_server, tls_files, password="wrong-secret-value")
    with kind, pytest.raises(DestinationMisconfigured) as error:
        kind.upload(local_file(tmp_path), "doc.pdf")
    assert "refused the sign-in (535)" in error.value.message
    assert "wrong-secret-value" not in error.value.message
    assert "wrong-secret-value" not in repr(kind)
    assert smtp_starttls_server.messages == []


def test_a_server_whose_certificate_no_trusted_authority_signed_is_refused(smtp_starttls_server, tmp_path):
    # The system's authorities, which never signed the test CA's certificate.
    with email_kind(smtp_starttls_server) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.upload(local_file(tmp_path), "doc.pdf")
    assert "certificate is not trusted" in error.value.message
    assert smtp_starttls_server.messages == []


def test_a_server_that_requires_starttls_refuses_a_plain_destination(smtp_starttls_server, tmp_path):
    kind = email_kind(smtp_starttls_server, security=Security.NONE, username="", password="")
    with kind, pytest.raises(DestinationMisconfigured) as error:
        kind.upload(local_file(tmp_path), "doc.pdf")
    assert "(530)" in error.value.message


def test_a_server_that_does_not_answer_is_a_temporary_failure(tmp_path):
    kind = EmailKind(host="127.0.0.1", port=free_port(), sender="d@example.org", recipient="a@example.org")
    with kind, pytest.raises(DeliveryTemporarilyFailed) as error:
        kind.upload(local_file(tmp_path), "doc.pdf")
    assert "could not be reached" in error.value.message


def test_a_file_larger_than_the_attachment_limit_is_refused_with_the_reason(smtp_server, tmp_path):
    with email_kind(smtp_server, max_attachment_size=1024) as kind, pytest.raises(DeliveryFailed) as error:
        kind.upload(local_file(tmp_path), "big.pdf")
    assert type(error.value) is DeliveryFailed
    assert "big.pdf is 0.0 MiB" in error.value.message
    assert "DEST_EMAIL_MAX_ATTACHMENT_SIZE" in error.value.message
    assert smtp_server.messages == []


def test_the_connection_check_signs_in_and_sends_nothing(smtp_starttls_server, tls_files):
    with email_kind(smtp_starttls_server, tls_files) as kind:
        kind.check(folder="")
    assert smtp_starttls_server.messages == []


def test_mail_cannot_be_looked_at_or_taken_back(smtp_server, tmp_path):
    with email_kind(smtp_server) as kind:
        kind.upload(local_file(tmp_path), "doc.pdf")
        assert kind.stat("doc.pdf") is None
        kind.remove("doc.pdf")
    assert len(smtp_server.wait_for_messages(1)) == 1


def test_document_values_cannot_add_headers(smtp_server, tmp_path):
    about = DocumentFacts(delivery_key="k", title="Bill\r\nBcc: victim@example.org")
    with email_kind(smtp_server) as kind:
        kind.upload(local_file(tmp_path, about=about), "x.pdf")
    (received,) = smtp_server.wait_for_messages(1)
    message = parsed(received.data)
    assert message["Bcc"] is None
    assert received.recipients == ["archive@example.org"]
    assert message["Subject"] == "Bill Bcc: victim@example.org"


# --- Settings -----------------------------------------------------------------------------------

VALID = {"host": "smtp.example.org", "sender": "d@example.org", "recipient": "a@example.org"}


@pytest.mark.parametrize(
    ("given", "secrets", "message"),
    [
        ({**VALID, "host": ""}, {}, "mail server (host) is missing"),
        ({**VALID, "host": "smtp.example.org\r\nRCPT"}, {}, "not a host name"),
        ({**VALID, "security": "ssl"}, {}, "security must be one of starttls, tls, none"),
        ({**VALID, "port": 70000}, {}, "port must be a number"),
        ({**VALID, "recipient": ""}, {}, "recipient address is missing"),
        ({**VALID, "recipient": "a@example.org, b@example.org"}, {}, "not one mail address"),
        ({**VALID, "recipient": "a@example.org\r\nBcc: b@example.org"}, {}, "not one mail address"),
        ({**VALID, "sender": "not an address"}, {}, "sender is not"),
        ({**VALID, "username": "mailer"}, {}, "go together"),
        ({**VALID, "security": "none", "username": "u"}, {"password": "p"}, "only sent over an encrypted"),
        ({**VALID, "colour": "red"}, {}, "no setting colour"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(given, secrets, message):
    with pytest.raises(InvalidInput) as error:
        EmailKind.clean(given, secrets, system_wide=False)
    assert message in error.value.message


def test_settings_are_normalised_with_the_port_of_the_security():
    cleaned, secrets = EmailKind.clean(
        {**VALID, "security": "tls", "sender": " Archive  <d@example.org> ", "username": "d@example.org"},
        {"password": "pw"},
        system_wide=True,
    )
    assert cleaned == {
        "host": "smtp.example.org",
        "port": 465,
        "security": "tls",
        "username": "d@example.org",
        "sender": "Archive <d@example.org>",
        "recipient": "a@example.org",
    }
    assert secrets == {"password": "pw"}


def test_a_users_own_mail_server_may_not_be_a_private_address(settings):
    settings.URL_FETCH_ALLOWED_NETWORKS = []
    given = {**VALID, "host": "127.0.0.1"}
    with pytest.raises(InvalidInput) as error:
        EmailKind.clean(given, {}, system_wide=False)
    assert "private, loopback or reserved address" in error.value.message
    EmailKind.clean(given, {}, system_wide=True)
    settings.URL_FETCH_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    EmailKind.clean(given, {}, system_wide=False)


@pytest.mark.parametrize(
    ("given", "port"),
    [({"security": "tls"}, 465), ({"security": "starttls"}, 587), ({"security": "tls", "port": 2465}, 2465)],
)
def test_a_users_own_mail_server_is_looked_up_on_the_port_it_will_be_reached_at(
    settings, address_lookups, given, port
):
    settings.URL_FETCH_ALLOWED_NETWORKS = []

    with pytest.raises(HostRefused):
        EmailKind.clean({**VALID, "host": "127.0.0.1", **given}, {}, system_wide=False)

    # The same check the connection makes: the security's own port when none is given.
    assert address_lookups == [("127.0.0.1", port)]
