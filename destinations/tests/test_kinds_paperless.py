"""The Paperless-ngx kind at our client boundary: a real HTTP server on 127.0.0.1 answers
with exchanges recorded in the shape paperless-ngx's REST API (version 9) gives them
(``recordings/paperless_*.json``)."""

from __future__ import annotations

import datetime
import email.parser
import email.policy
import hashlib
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from conftest import run_manage
from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    DocumentFacts,
    LocalFile,
)
from destinations.kinds.paperless import PaperlessKind, _field_value
from destinations.kinds.paperless_client import CustomField
from destinations.models import Delivery, DeliveryStatus
from destinations.services import DeliveryOutcome, deliveries_schedule, delivery_run, destination_create
from docuelevate.addresses import HostRefused
from docuelevate.errors import InvalidInput
from documents.tests.file_server import resolve_as
from documents.tests.http_replay import ReceivedRequest, assert_matches_recording, running_replay_server

RECORDINGS = Path(__file__).resolve().parent / "recordings"
TOKEN = "4c1b7e0f9a2d3c5b6e8f0a1b2c3d4e5f6a7b8c9d"
CONTENT = b"%PDF-1.7 delivered to Paperless-ngx\n%%EOF\n"
CHECKSUM = hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()  # as in the recordings
TASK = "4a1f3c2e-9b7d-4e8a-a6c1-2f5e8d9b0c17"
FILENAME = "2024-03-12_Invoice.pdf"


@pytest.fixture
def paperless():
    with running_replay_server() as server:
        yield server


def play(server, name):
    return server.play(name, RECORDINGS)


def kind_for(server, **options) -> PaperlessKind:
    options.setdefault("poll_interval", 0.01)
    options.setdefault("poll_deadline", 5)
    return PaperlessKind(host=server.url, api_token=TOKEN, **options)


def local_file(tmp_path, facts: DocumentFacts | None = None) -> LocalFile:
    path = tmp_path / FILENAME
    path.write_bytes(CONTENT)
    return LocalFile(
        path=path,
        size=len(CONTENT),
        sha256=hashlib.sha256(CONTENT).hexdigest(),
        facts=facts or DocumentFacts(),
    )


class Book:
    """A delivery's receipt book, as the service hands one to each run."""

    def __init__(self, receipt: str = "") -> None:
        self.kept = receipt

    def receipt(self) -> str:
        return self.kept

    def keep(self, receipt: str) -> None:
        self.kept = receipt


def assert_followed(server, recording) -> None:
    """Every request went as recorded, in order; a repeated exchange answers the rest."""
    exchanges = recording["exchanges"]
    if not exchanges[-1].get("repeat"):
        assert len(server.received) == len(exchanges), [r.path for r in server.received]
    for index, received in enumerate(server.received):
        assert_matches_recording(received, exchanges[min(index, len(exchanges) - 1)]["request"])


def posted(server) -> list[ReceivedRequest]:
    return [r for r in server.received if r.path == "/api/documents/post_document/"]


def form(request: ReceivedRequest) -> dict[str, list[Any]]:
    """The multipart form a request carried: field name -> values; the file's value is
    (file name, content type, bytes)."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields: dict[str, list[Any]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_filename():
            fields.setdefault(name, []).append((part.get_filename(), part.get_content_type(), payload))
        else:
            fields.setdefault(name, []).append(payload.decode())
    return fields


# --- Delivering ------------------------------------------------------------------------------


def test_a_new_document_is_posted_awaited_and_given_its_custom_fields(paperless, tmp_path):
    recording = play(paperless, "paperless_post_with_custom_fields")
    facts = DocumentFacts(
        title="Rechnung RE-4711 ACME Corp",
        created=datetime.date(2024, 3, 12),
        correspondent="ACME Corp",
        document_type="invoice",
        tags=("energy",),
        fields={
            "absender": "Max Mustermann",
            "language": "de",
            "monetary_amounts": [{"value": "119.00", "currency": "EUR"}],
            "reference_number": "RE-4711",
        },
    )
    kind = kind_for(
        paperless,
        custom_field_absender="Absender",
        custom_fields_mapping={"monetary_amounts": "Betrag", "language": "Sprache"},
    )
    with kind:
        uploaded = kind.upload(local_file(tmp_path, facts), f"2024/{FILENAME}")

    assert (uploaded.path, uploaded.remote_id, uploaded.remote_version) == ("documents/42", "42", CHECKSUM)
    assert_followed(paperless, recording)
    sent = form(posted(paperless)[0])
    assert sent["document"] == [(FILENAME, "application/pdf", CONTENT)]
    assert sent["title"] == ["Rechnung RE-4711 ACME Corp"]
    assert sent["created"] == ["2024-03-12"]
    # The correspondent was made (id 5); the type and the tag existed under other spellings.
    assert (sent["correspondent"], sent["document_type"], sent["tags"]) == (["5"], ["2"], ["4"])


def test_a_document_paperless_has_already_is_delivered_without_posting(paperless, tmp_path):
    recording = play(paperless, "paperless_already_there")
    with kind_for(paperless) as kind:
        uploaded = kind.upload(local_file(tmp_path), FILENAME)
    assert (uploaded.path, uploaded.remote_id) == ("documents/17", "17")
    assert posted(paperless) == []
    assert_followed(paperless, recording)


def test_a_duplicate_refused_by_paperless_is_delivered_when_the_document_it_repeats_is_ours(
    paperless, tmp_path
):
    recording = play(paperless, "paperless_duplicate_refused")
    with kind_for(paperless) as kind:
        uploaded = kind.upload(local_file(tmp_path), FILENAME)
    assert (uploaded.path, uploaded.remote_id) == ("documents/17", "17")
    assert_followed(paperless, recording)


def test_a_failed_consumption_fails_with_paperless_reason_and_the_next_run_posts_anew(paperless, tmp_path):
    recording = play(paperless, "paperless_task_failure")
    book = Book()
    kind = kind_for(paperless)
    kind.keep_receipts_in(book)
    with pytest.raises(DeliveryFailed) as error:
        kind.upload(local_file(tmp_path), FILENAME)
    assert type(error.value) is DeliveryFailed  # permanent: the same file fails the same way
    assert "Ghostscript PDF/A rendering failed" in error.value.message
    assert_followed(paperless, recording)
    assert book.kept == ""

    # The task's receipt was dropped: a redelivery posts the file again, once.
    play(paperless, "paperless_post_then_success")
    paperless.received.clear()
    assert kind.upload(local_file(tmp_path), FILENAME).remote_id == "42"
    assert len(posted(paperless)) == 1


def test_a_refused_token_is_a_configuration_error_that_quotes_no_secret(paperless, tmp_path):
    play(paperless, "paperless_token_refused")
    with kind_for(paperless) as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.upload(local_file(tmp_path), FILENAME)
    assert "refused the API token" in error.value.message
    assert TOKEN not in error.value.message
    assert posted(paperless) == []


def test_a_502_while_polling_is_waited_through(paperless, tmp_path):
    recording = play(paperless, "paperless_502_while_polling")
    with kind_for(paperless) as kind:
        uploaded = kind.upload(local_file(tmp_path), FILENAME)
    assert uploaded.remote_id == "42"
    assert len(posted(paperless)) == 1
    assert_followed(paperless, recording)


def test_a_502_to_the_upload_is_temporary_and_the_retry_delivers(paperless, tmp_path):
    play(paperless, "paperless_502_on_post")
    kind = kind_for(paperless)
    with pytest.raises(DeliveryTemporarilyFailed) as error:
        kind.upload(local_file(tmp_path), FILENAME)
    assert "502" in error.value.message

    play(paperless, "paperless_post_then_success")
    assert kind.upload(local_file(tmp_path), FILENAME).remote_id == "42"


def test_a_consumption_past_the_deadline_is_temporary_and_the_next_run_waits_on_the_same_task(
    paperless, tmp_path
):
    recording = play(paperless, "paperless_consumption_slow")
    book = Book()
    kind = kind_for(paperless, poll_deadline=0.3)
    kind.keep_receipts_in(book)
    with pytest.raises(DeliveryTemporarilyFailed) as error:
        kind.upload(local_file(tmp_path), FILENAME)
    assert f"task {TASK}: started" in error.value.message
    assert_followed(paperless, recording)
    assert book.kept == f"paperless-task:{CHECKSUM}:{TASK}"

    # The retry (another client, as another run would build) gets the receipt and waits on
    # the task it names: nothing is posted twice.
    later = kind_for(paperless)
    later.keep_receipts_in(book)
    recording = play(paperless, "paperless_consumption_finished")
    paperless.received.clear()
    assert later.upload(local_file(tmp_path), FILENAME).remote_id == "42"
    assert posted(paperless) == []
    assert_followed(paperless, recording)


def test_a_task_paperless_no_longer_knows_is_posted_again(paperless, tmp_path):
    recording = play(paperless, "paperless_task_forgotten")
    kind = kind_for(paperless)
    book = Book(f"paperless-task:{CHECKSUM}:{TASK}")
    kind.keep_receipts_in(book)
    assert kind.upload(local_file(tmp_path), FILENAME).remote_id == "42"
    assert len(posted(paperless)) == 1
    assert_followed(paperless, recording)
    assert book.kept == f"paperless-task:{CHECKSUM}:{TASK}"  # the new post's


def test_a_receipt_for_other_content_is_not_waited_on(paperless, tmp_path):
    recording = play(paperless, "paperless_post_then_success")
    kind = kind_for(paperless)
    kind.keep_receipts_in(Book(f"paperless-task:{'0' * 32}:an-older-task"))  # an earlier version
    assert kind.upload(local_file(tmp_path), FILENAME).remote_id == "42"
    assert_followed(paperless, recording)


def test_a_missing_custom_field_stops_the_delivery_before_anything_is_posted(paperless, tmp_path):
    play(paperless, "paperless_missing_custom_field")
    kind = kind_for(paperless, custom_fields_mapping={"empfaenger": "Empfänger"})
    with pytest.raises(DestinationMisconfigured) as error:
        kind.upload(local_file(tmp_path), FILENAME)
    assert "has no custom field Empfänger" in error.value.message
    assert len(paperless.received) == 1


def test_a_paperless_older_than_api_version_9_is_a_configuration_error(paperless, tmp_path):
    play(paperless, "paperless_old_version")
    with pytest.raises(DestinationMisconfigured) as error:
        kind_for(paperless).upload(local_file(tmp_path), FILENAME)
    assert "Paperless-ngx 2.16 or later" in error.value.message


def test_an_unreachable_paperless_is_temporary(tmp_path):
    with running_replay_server() as server:
        url = server.url  # closed again: nothing listens there now
    kind = PaperlessKind(host=url, api_token=TOKEN)
    with pytest.raises(DeliveryTemporarilyFailed):
        kind.upload(local_file(tmp_path), FILENAME)


# --- Stat, remove, check ---------------------------------------------------------------------


def test_a_delivered_document_can_be_looked_at_and_nothing_is_at_a_file_name(paperless):
    play(paperless, "paperless_stat")
    with kind_for(paperless) as kind:
        assert kind.stat(FILENAME) is None
        there = kind.stat("documents/42")
        assert kind.stat("documents/43") is None
    assert there is not None
    assert (there.remote_id, there.version, there.size) == ("42", CHECKSUM, len(CONTENT))
    assert there.sha256 is None  # Paperless keeps an MD5 only


def test_removing_deletes_nothing(paperless):
    with kind_for(paperless) as kind:
        kind.remove("documents/42")
    assert paperless.received == []


def test_the_check_reads_permissions_and_lists_without_writing(paperless):
    recording = play(paperless, "paperless_check")
    with kind_for(paperless, custom_fields_mapping={"language": "Sprache"}) as kind:
        kind.check(folder="")
    assert_followed(paperless, recording)
    assert {request.method for request in paperless.received} == {"GET"}


def test_the_check_names_the_permissions_a_read_only_token_lacks(paperless):
    play(paperless, "paperless_check_read_only")
    with pytest.raises(DestinationMisconfigured) as error:
        kind_for(paperless).check(folder="")
    assert "may not add documents" in error.value.message


# --- Settings ----------------------------------------------------------------------------------


def test_settings_are_cleaned_and_the_mapping_may_be_given_as_json(monkeypatch):
    resolve_as(monkeypatch, {"paperless.example.com": ["93.184.216.34"]})  # a public address
    settings, secrets = PaperlessKind.clean(
        {"host": " https://paperless.example.com/ ", "custom_fields_mapping": '{"absender": " Sender "}'},
        {"api_token": f" {TOKEN} "},
        system_wide=False,
    )
    assert settings == {
        "host": "https://paperless.example.com",
        "custom_field_absender": "",
        "custom_fields_mapping": {"absender": "Sender"},
    }
    assert secrets == {"api_token": TOKEN}


HOST = "https://paperless.example.com"


@pytest.mark.parametrize(
    ("given", "secrets", "reason"),
    [
        ({"host": "paperless:8000"}, {"api_token": TOKEN}, "must be an address"),
        ({"host": "https://user:pw@paperless.example.com"}, {"api_token": TOKEN}, "must not carry"),
        ({"host": HOST}, {}, "needs its API token"),
        ({"host": HOST}, {"api_token": "abc\r\nX-Evil: 1"}, "needs its API token"),
        ({"host": HOST, "custom_fields_mapping": "{nope"}, {"api_token": TOKEN}, "not valid JSON"),
        ({"host": HOST, "custom_fields_mapping": '["a"]'}, {"api_token": TOKEN}, "an object"),
        ({"host": HOST, "folder": "x"}, {"api_token": TOKEN}, "no setting folder"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(given, secrets, reason):
    with pytest.raises(InvalidInput) as error:
        PaperlessKind.clean(given, secrets, system_wide=True)
    assert reason in error.value.message
    assert "X-Evil" not in error.value.message


def test_a_users_paperless_on_this_machine_is_refused_unless_its_network_is_allowed(settings):
    settings.URL_FETCH_ALLOWED_NETWORKS = ()
    own = {"host": "http://127.0.0.1:8000"}
    with pytest.raises(HostRefused, match="private, loopback or reserved address"):
        PaperlessKind.clean(own, {"api_token": TOKEN}, system_wide=False)
    assert PaperlessKind.clean(own, {"api_token": TOKEN}, system_wide=True)[0]["host"] == own["host"]
    settings.URL_FETCH_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    assert PaperlessKind.clean(own, {"api_token": TOKEN}, system_wide=False)[0]["host"] == own["host"]


def test_the_environment_describes_a_system_wide_destination(settings):
    settings.PAPERLESS_ENABLED = True
    settings.PAPERLESS_HOST = "https://paperless.example.com"
    settings.PAPERLESS_NGX_API_TOKEN = TOKEN
    settings.PAPERLESS_CUSTOM_FIELD_ABSENDER = "Absender"
    settings.PAPERLESS_CUSTOM_FIELDS_MAPPING = {"empfaenger": "Empfänger"}
    described = PaperlessKind.from_environment()
    assert described is not None
    assert described.settings == {
        "host": "https://paperless.example.com",
        "custom_field_absender": "Absender",
        "custom_fields_mapping": {"empfaenger": "Empfänger"},
    }
    assert described.secrets == {"api_token": TOKEN}
    settings.PAPERLESS_ENABLED = False
    assert PaperlessKind.from_environment() is None


@pytest.fixture
def start_env(embedded_env):
    """The environment of a fresh ``manage.py`` process, without Paperless variables."""
    for name in list(embedded_env):
        if name.startswith("PAPERLESS_") or name in {"DEBUG", "SESSION_SECRET_FILE"}:
            del embedded_env[name]
    embedded_env["SESSION_SECRET"] = "Yk2vP9wq-Lr57XnT0cZs8mUe3bHa1jDf6gQ4tN"
    return embedded_env


def test_an_environment_with_host_and_token_delivers_to_paperless_without_a_switch(start_env):
    # As DocuElevate's .env files have it: no PAPERLESS_ENABLED, the host and token set.
    start_env.update(PAPERLESS_HOST="https://paperless.example.com/", PAPERLESS_NGX_API_TOKEN=TOKEN)
    start_env["PAPERLESS_CUSTOM_FIELDS_MAPPING"] = '{"empfaenger": "Recipient"}'
    code = (
        "from django.conf import settings as s; "
        "print(s.PAPERLESS_ENABLED, s.PAPERLESS_HOST, s.PAPERLESS_CUSTOM_FIELDS_MAPPING)"
    )
    result = run_manage(start_env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("True https://paperless.example.com {'empfaenger': 'Recipient'}")

    start_env["PAPERLESS_ENABLED"] = "false"
    result = run_manage(start_env, "shell", "-c", code)
    assert result.stdout.strip().endswith("False https://paperless.example.com {'empfaenger': 'Recipient'}")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"PAPERLESS_HOST": "https://paperless.example.com"}, "needs PAPERLESS_NGX_API_TOKEN"),
        (
            {"PAPERLESS_HOST": "paperless:8000", "PAPERLESS_NGX_API_TOKEN": TOKEN},
            "PAPERLESS_HOST must start with",
        ),
        (
            {"PAPERLESS_ENABLED": "true", "PAPERLESS_NGX_API_TOKEN": TOKEN},
            "PAPERLESS_ENABLED=true needs PAPERLESS_HOST",
        ),
        (
            {"PAPERLESS_CUSTOM_FIELDS_MAPPING": "{absender: Sender}"},
            "PAPERLESS_CUSTOM_FIELDS_MAPPING is not valid JSON",
        ),
        (
            {"PAPERLESS_CUSTOM_FIELDS_MAPPING": '["Sender"]'},
            "PAPERLESS_CUSTOM_FIELDS_MAPPING must be a JSON object",
        ),
    ],
)
def test_a_paperless_setting_that_cannot_work_stops_start_up_naming_it(start_env, overrides, message):
    start_env.update(overrides)
    result = run_manage(start_env, "check")
    assert result.returncode != 0
    assert message in result.stderr
    assert TOKEN not in result.stderr


def field(data_type: str, options=()) -> CustomField:
    return CustomField(id=1, name="Field", data_type=data_type, options=tuple(options))


@pytest.mark.parametrize(
    ("custom_field", "raw", "value"),
    [
        (field("string"), "x" * 200, "x" * 128),  # Paperless keeps 128 characters
        (
            field("string"),
            ["DE02 1203 0000 0000 2020 51", "DE89 3704 0044 0532 0130 00"],
            "DE02 1203 0000 0000 2020 51, DE89 3704 0044 0532 0130 00",
        ),
        (field("string"), "Unknown", None),
        (field("date"), "2024-03-12", "2024-03-12"),
        (field("date"), "soon", None),
        (field("integer"), "42", 42),
        (field("integer"), "4.2", None),
        (field("float"), "4,25", 4.25),
        (field("boolean"), True, True),
        (
            field("monetary"),
            [{"value": "119", "currency": "EUR"}, {"value": "19", "currency": "EUR"}],
            "EUR119.00",
        ),
        (field("monetary"), "12.5", "12.50"),
        (field("url"), "https://example.com/invoice/4711", "https://example.com/invoice/4711"),
        (field("url"), "example.com", None),
        (field("select", [("opt-de", "de"), ("opt-en", "en")]), "EN", "opt-en"),
        (field("select", [("opt-de", "de")]), "fr", None),
        (field("documentlink"), "17", None),
    ],
)
def test_a_metadata_value_lands_in_a_custom_field_only_as_a_value_of_its_type(custom_field, raw, value):
    assert _field_value(custom_field, raw) == value


# --- Through the delivery service --------------------------------------------------------------


def test_a_processed_document_is_delivered_once_and_its_delivery_names_the_paperless_document(
    paperless, processed, owner, monkeypatch, django_capture_on_commit_callbacks, loopback_allowed
):
    destination_create(
        kind="paperless",
        name="Archive",
        owner=owner,
        settings={"host": paperless.url},
        secrets={"api_token": TOKEN},
    )
    document = processed(CONTENT, name="2024-03-12_Invoice", document_title="")
    play(paperless, "paperless_post_then_success")
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", lambda delivery_id: None)
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = deliveries_schedule(document_id=document.pk)

    run = delivery_run(delivery_id=delivery_id)
    assert run.outcome == DeliveryOutcome.DELIVERED, run.message
    delivery = Delivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.remote_path, delivery.remote_id) == (
        DeliveryStatus.DELIVERED,
        "documents/42",
        "42",
    )
    assert delivery.remote_version == CHECKSUM  # the receipt gave way to what was delivered
    assert form(posted(paperless)[0])["document"][0][0] == FILENAME
    assert document.logs.filter(step_name="upload_to_paperless", status="success").count() == 1

    # Delivered: a message that comes again finds nothing to do and asks Paperless nothing.
    asked = len(paperless.received)
    assert delivery_run(delivery_id=delivery_id).outcome == DeliveryOutcome.NOOP
    assert len(paperless.received) == asked
