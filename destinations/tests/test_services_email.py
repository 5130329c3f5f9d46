"""Deliveries by e-mail in this process, against a real SMTP server: the attachment byte
for byte, to the right recipient, once per delivery, with the delivery's Message-ID."""

from __future__ import annotations

import datetime
import logging
import uuid
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest

from destinations.models import Delivery, DeliveryStatus, Destination, HealthStatus
from destinations.services import (
    DeliveryOutcome,
    deliveries_schedule,
    delivery_run,
    destination_create,
    system_destinations_sync,
)
from documents.models import FailureKind, ProcessingLog

CONTENT = b"%PDF-1.7 delivered bytes\n%%EOF\n"


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", sent.append)
    return sent


@pytest.fixture
def trusted(monkeypatch, tls_files):
    """The workers trust the test CA, as an operator's SSL_CERT_FILE would make them."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_file))


def email_destination(server, *, owner=None, recipient="archive@example.org", password=None) -> Destination:
    security = "starttls" if server.starttls else "tls" if server.implicit_tls else "none"
    settings = {
        "host": server.host,
        "port": server.port,
        "security": security,
        "sender": "DocuElevate <docuelevate@example.org>",
        "recipient": recipient,
    }
    secrets = {}
    if server.username:
        settings["username"] = server.username
        secrets["password"] = password or server.password
    return destination_create(
        kind="email", name=f"mail {uuid.uuid4().hex[:6]}", owner=owner, settings=settings, secrets=secrets
    )


def deliver_all(document):
    return [
        delivery_run(delivery_id=delivery_id) for delivery_id in deliveries_schedule(document_id=document.pk)
    ]


def message_of(received):
    return BytesParser(policy=default_policy).parsebytes(received.data)


def test_a_processed_document_is_mailed_once_over_starttls_to_the_recipient(
    processed, smtp_starttls_server, trusted, enqueued
):
    destination = email_destination(smtp_starttls_server)
    document = processed(
        CONTENT,
        document_title="Electricity",
        document_type="Invoice",
        document_date=datetime.date(2024, 3, 12),
    )
    (delivery_id,) = deliveries_schedule(document_id=document.pk)

    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.DELIVERED
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.NOOP  # the message came twice

    (received,) = smtp_starttls_server.wait_for_messages(1, timeout=2)
    assert (received.over_tls, received.login, received.recipients) == (
        True,
        "mailer",
        ["archive@example.org"],
    )
    message = message_of(received)
    (attachment,) = message.iter_attachments()
    assert attachment.get_content() == CONTENT
    assert attachment.get_filename() == "2024-03-12_Invoice.pdf"
    assert message["Subject"] == "Electricity (Invoice, 2024-03-12)"
    expected_id = f"<docuelevate.{document.uuid.hex}.{destination.pk}."
    assert message["Message-ID"].startswith(expected_id)
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts, delivery.remote_id) == (
        DeliveryStatus.DELIVERED,
        1,
        message["Message-ID"],
    )
    assert ProcessingLog.objects.filter(step_name="upload_to_email", status="success").count() == 1


def test_a_send_retried_after_a_temporary_failure_arrives_once(
    processed, smtp_starttls_server, trusted, enqueued
):
    email_destination(smtp_starttls_server)
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    smtp_starttls_server.stop()

    first = delivery_run(delivery_id=delivery_id)

    assert first.outcome == DeliveryOutcome.RETRY
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.error_kind) == (DeliveryStatus.PENDING, FailureKind.TEMPORARY)
    assert "could not be reached" in delivery.error

    smtp_starttls_server.start()
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.DELIVERED
    assert len(smtp_starttls_server.wait_for_messages(2, timeout=2)) == 1
    assert Delivery.objects.get(pk=delivery_id).attempts == 2


def test_processing_again_sends_again_under_the_same_message_id(processed, smtp_server, enqueued):
    email_destination(smtp_server)
    document = processed(CONTENT)
    deliver_all(document)
    deliver_all(document)  # the same bytes once more: mail cannot be looked at before sending

    first, second = smtp_server.wait_for_messages(2)
    assert message_of(first)["Message-ID"] == message_of(second)["Message-ID"]


def test_a_refused_password_fails_at_once_as_configuration_and_no_secret_is_logged(
    processed, smtp_starttls_server, trusted, enqueued, caplog
):
    destination = email_destination(smtp_starttls_server, password="wrong-secret-value")
    document = processed(CONTENT)
    with caplog.at_level(logging.DEBUG):
        (run,) = deliver_all(document)

    assert run.outcome == DeliveryOutcome.FAILED
    delivery = Delivery.objects.get(document=document)
    assert (delivery.error_kind, delivery.attempts) == (FailureKind.CONFIGURATION, 1)
    assert "refused the sign-in (535)" in delivery.error
    destination.refresh_from_db()
    assert destination.health_status == HealthStatus.FAILING
    assert smtp_starttls_server.messages == []
    logged = [record.getMessage() for record in caplog.records]
    logged += list(ProcessingLog.objects.values_list("message", flat=True))
    assert not [line for line in [*logged, delivery.error] if "wrong-secret-value" in line]


def test_a_users_own_destination_mails_to_their_recipient(processed, owner, smtp_server, enqueued, settings):
    import ipaddress

    settings.URL_FETCH_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    email_destination(smtp_server, owner=owner, recipient="owner@example.net")
    deliver_all(processed(CONTENT))
    (received,) = smtp_server.wait_for_messages(1)
    assert received.recipients == ["owner@example.net"]


def test_the_environment_defines_the_email_destination(db, settings):
    settings.DEST_EMAIL_ENABLED = True
    settings.DEST_EMAIL_HOST = "smtp.example.org"
    settings.DEST_EMAIL_PORT = 465
    settings.DEST_EMAIL_USE_TLS = True
    settings.DEST_EMAIL_USERNAME = "docuelevate@example.org"
    settings.DEST_EMAIL_PASSWORD = "mail-secret"
    settings.DEST_EMAIL_SENDER = ""
    settings.DEST_EMAIL_DEFAULT_RECIPIENT = "archive@example.org"

    system_destinations_sync()

    row = Destination.objects.get(system_key="env:email")
    assert row.settings == {
        "host": "smtp.example.org",
        "port": 465,
        "security": "tls",  # DEST_EMAIL_USE_TLS on port 465: TLS from the first byte
        "username": "docuelevate@example.org",
        "sender": "docuelevate@example.org",  # no DEST_EMAIL_SENDER: the user name
        "recipient": "archive@example.org",
    }
    assert row.secrets.reveal() == {"password": "mail-secret"}

    settings.DEST_EMAIL_PORT = 587
    system_destinations_sync()
    assert Destination.objects.get(system_key="env:email").settings["security"] == "starttls"
