"""The Azure Document Intelligence read client against recorded exchanges, replayed over real
HTTP, and what the OCR engine makes of its failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from documents.integrations.azure import (
    AzureError,
    AzureFailure,
    AzureReadClient,
    AzureReadResult,
    parse_analyze_result,
)
from documents.models import FailureKind
from documents.pipeline.base import StepTemporarilyFailed
from documents.pipeline.ocr import EngineRefusedDocument
from documents.pipeline.ocr.azure import AzureEngine
from documents.pipeline.steps import OcrStep
from documents.tests.http_replay import ReplayServer, assert_matches_recording, running_replay_server

KEY = "test-recorded-key-0123456789abcdef"


class FakeTime:
    """A clock that only moves when the client sleeps, so polling tests take no time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with running_replay_server() as replay:
        yield replay


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(
    server: ReplayServer, fake_time: FakeTime, key: str = KEY, timeout: float = 30
) -> AzureReadClient:
    return AzureReadClient(
        endpoint=f"{server.url}/",
        api_key=key,
        timeout=timeout,
        poll_interval=0.5,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


def recorded_pdf(recording: dict[str, Any], tmp_path: Path) -> Path:
    """The PDF whose upload the recording holds."""
    path = tmp_path / "scan.pdf"
    path.write_bytes(recording["exchanges"][0]["request"]["body_text"].encode())
    return path


def test_a_pdf_is_read_after_one_running_poll_waiting_as_long_as_azure_asks(server, fake_time, tmp_path):
    recording = server.play("azure_read_success")

    result = make_client(server, fake_time).read_pdf(recorded_pdf(recording, tmp_path))

    assert len(server.received) == 3
    for received, exchange in zip(server.received, recording["exchanges"], strict=True):
        assert_matches_recording(received, exchange["request"])
    assert fake_time.sleeps == [1.0, 2.0]  # the Retry-After of the 202, then of the "running" poll
    assert result == AzureReadResult(
        text=(
            "Stadtwerke Musterstadt GmbH\nRechnung Nr. RE-2024-0815\nGesamtbetrag 119,00 EUR\n"
            "Seite 2 von 2\nVielen Dank für Ihre Zahlung."
        ),
        pages=[
            "Stadtwerke Musterstadt GmbH\nRechnung Nr. RE-2024-0815\nGesamtbetrag 119,00 EUR",
            "Seite 2 von 2\nVielen Dank für Ihre Zahlung.",
        ],
    )


def test_a_failed_operation_raises_with_azures_most_specific_reason(server, fake_time, tmp_path):
    recording = server.play("azure_read_failed")

    with pytest.raises(AzureError, match=r"failed: The file is corrupted .* \(InvalidContent\)") as failed:
        make_client(server, fake_time).read_pdf(recorded_pdf(recording, tmp_path))

    assert failed.value.kind is AzureFailure.DOCUMENT_REFUSED
    assert [request.method for request in server.received] == ["POST", "GET"]


def test_a_rejected_key_raises_a_readable_error_without_the_key(server, fake_time, tmp_path):
    recording = server.play("azure_read_unauthorized")
    wrong_key = "test-wrong-key-fedcba9876543210"

    with pytest.raises(AzureError) as raised:
        make_client(server, fake_time, key=wrong_key).read_pdf(recorded_pdf(recording, tmp_path))

    assert (raised.value.kind, raised.value.status) == (AzureFailure.CONFIGURATION, 401)
    assert_matches_recording(server.received[0], recording["exchanges"][0]["request"])
    message = str(raised.value)
    assert message.startswith("Azure OCR: the key was rejected (HTTP 401). Access denied")
    assert wrong_key not in message
    assert wrong_key not in repr(make_client(server, fake_time, key=wrong_key))


def test_an_operation_that_never_finishes_raises_after_the_timeout(server, fake_time, tmp_path):
    recording = server.play("azure_read_never_finishes")

    with pytest.raises(AzureError, match="did not finish within 4 seconds") as raised:
        make_client(server, fake_time, timeout=4).read_pdf(recorded_pdf(recording, tmp_path))

    assert raised.value.kind is AzureFailure.TIMEOUT
    assert fake_time.sleeps == [1.0, 2.0, 1.0]  # the last wait is cut to what is left of the 4 s
    assert [request.method for request in server.received] == ["POST", "GET", "GET", "GET"]


def test_the_key_is_never_sent_to_an_operation_location_on_another_host(server, fake_time, tmp_path):
    recording = server.play("azure_read_foreign_operation_location")

    with pytest.raises(AzureError, match="Operation-Location"):
        make_client(server, fake_time).read_pdf(recorded_pdf(recording, tmp_path))

    assert len(server.received) == 1


def test_an_unreachable_endpoint_raises_a_readable_error(fake_time, tmp_path):
    with running_replay_server() as stopped:
        endpoint = stopped.url
    client = AzureReadClient(endpoint, KEY, sleep=fake_time.sleep, clock=fake_time.clock)
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%%EOF\n")

    with pytest.raises(AzureError, match="Could not reach Azure OCR") as raised:
        client.read_pdf(pdf)

    assert raised.value.kind is AzureFailure.UNREACHABLE


def test_page_text_comes_from_the_spans_when_azure_sends_no_lines():
    content = "Grüße aus Köln 👋\nSeite zwei"
    result = parse_analyze_result(
        {
            "content": content,
            "pages": [
                {"pageNumber": 1, "spans": [{"offset": 0, "length": 16}]},
                {"pageNumber": 2, "spans": [{"offset": 17, "length": 10}]},
            ],
        }
    )

    assert result == AzureReadResult(text=content, pages=["Grüße aus Köln 👋", "Seite zwei"])


@pytest.mark.parametrize(
    "analyze_result",
    [
        None,
        {"pages": []},
        {"content": "text", "pages": {"1": "text"}},
        {"content": "text", "pages": [{"spans": [{"offset": "0", "length": 4}]}]},
    ],
)
def test_a_malformed_result_raises(analyze_result):
    with pytest.raises(AzureError):
        parse_analyze_result(analyze_result)


def test_a_throttled_upload_is_sent_again_after_the_wait_azure_asks_for(server, fake_time, tmp_path):
    recording = server.play("azure_read_throttled")

    result = make_client(server, fake_time).read_pdf(recorded_pdf(recording, tmp_path))

    for received, exchange in zip(server.received, recording["exchanges"], strict=True):
        assert_matches_recording(received, exchange["request"])
    assert fake_time.sleeps == [3.0, 1.0]
    assert result.pages[1] == "Seite 2 von 2\nVielen Dank für Ihre Zahlung."


# --- The OCR engine: what Azure's failures mean for the document ----------------------------


def test_a_document_azure_refuses_is_final_for_azure_and_anything_else_is_worth_a_retry(
    server, fake_time, tmp_path
):
    engine = AzureEngine(make_client(server, fake_time))
    options = {"destination": tmp_path / "out.pdf", "pages": [1], "replace_text": False, "scratch": tmp_path}

    with pytest.raises(EngineRefusedDocument, match="The file is corrupted") as refused:
        engine.ocr(source=recorded_pdf(server.play("azure_read_failed"), tmp_path), **options)
    assert refused.value.kind is FailureKind.PERMANENT

    with pytest.raises(StepTemporarilyFailed, match="the key was rejected") as rejected_key:
        engine.ocr(source=recorded_pdf(server.play("azure_read_unauthorized"), tmp_path), **options)
    assert rejected_key.value.kind is FailureKind.TEMPORARY


def test_a_document_azure_refuses_is_read_by_the_next_configured_engine(
    server, settings, samples, engines, tmp_path
):
    server.play("azure_read_failed")
    settings.OCR_PROVIDERS = ["azure", "tesseract"]
    settings.AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT = server.url
    settings.AZURE_DOCUMENT_INTELLIGENCE_KEY = KEY

    outcome = OcrStep._run_engines(samples / "scan.pdf", tmp_path / "out.pdf", [1], False, tmp_path)

    assert [request.method for request in server.received] == ["POST", "GET"]
    assert outcome.searchable
    assert (tmp_path / "out.pdf").exists()
