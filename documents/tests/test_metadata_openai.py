"""The OpenAI-compatible extractor against recorded chat completions, replayed over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from conftest import CLOCK_START
from documents.integrations.openai_chat import OpenAIChatClient
from documents.metadata.base import MAX_TAGS, Amount, ExtractedMetadata
from documents.metadata.openai import MAX_TEXT_CHARS, OpenAIExtractor, validated_metadata
from documents.tests.http_replay import ReplayServer, assert_matches_recording, running_replay_server

INVOICE_TEXT = """\
Stadtwerke Musterstadt GmbH · Hauptstraße 1 · 12345 Musterstadt

Herrn
Max Mustermann
Gartenweg 5
12345 Musterstadt

Rechnung Nr. RE-2024-0815                       Datum: 14.03.2024
Kundennummer: 4711-0815

Stromlieferung Februar 2024
Nettobetrag                                   100,00 EUR
zzgl. 19 % MwSt.                               19,00 EUR
Gesamtbetrag                                  119,00 EUR

Bitte überweisen Sie den Betrag bis zum 28.03.2024 auf
IBAN DE89 3704 0044 0532 0130 00.
"""

RULES_RESULT = ExtractedMetadata(
    title="Rules title",
    document_type="letter",
    document_date=date(2024, 3, 1),
    correspondent="Rules Correspondent",
    sender="Rules Sender",
    recipient="Rules Recipient",
    language="en",
    reference_number="RULES-1",
    amounts=(Amount(Decimal("1.00"), "USD"),),
    ibans=("DE89370400440532013000",),
    tags=("rules",),
    confidence=10,
    filename="2024-03-01_Rules_title",
)


class FixedExtractor:
    """Stands in for the rules extractor: always the same answer, and remembers its calls."""

    name = "fixed"

    def __init__(self, result: ExtractedMetadata = RULES_RESULT) -> None:
        self.result = result
        self.calls: list[tuple[str, str]] = []

    def extract(self, *, text: str, original_filename: str) -> ExtractedMetadata:
        self.calls.append((text, original_filename))
        return self.result


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with running_replay_server() as replay:
        yield replay


@pytest.fixture
def rules() -> FixedExtractor:
    return FixedExtractor()


def make_extractor(server: ReplayServer, rules: FixedExtractor, **overrides: Any) -> OpenAIExtractor:
    """The extractor with a client of the replay server; ``overrides`` are client options."""
    options: dict[str, Any] = {
        "api_key": "sk-test-recorded-key",
        "base_url": f"{server.url}/v1",
        "model": "gpt-4o-mini-2024-07-18",
        "timeout": 5,
        "max_retries": 0,
    }
    options.update(overrides)
    return OpenAIExtractor(client=OpenAIChatClient(**options), fallback=rules)


def test_a_good_answer_fills_every_field_it_knows_and_the_rules_add_the_iban(server, rules):
    recording = server.play("openai_chat_invoice")
    result = make_extractor(server, rules).extract(text=INVOICE_TEXT, original_filename="scan_0042.pdf")

    assert len(server.received) == 1
    assert_matches_recording(server.received[0], recording["exchanges"][0]["request"])
    assert result == ExtractedMetadata(
        title="Stromrechnung Februar 2024",
        document_type="invoice",
        document_date=date(2024, 3, 14),
        correspondent="Stadtwerke Musterstadt GmbH",
        sender="Stadtwerke Musterstadt GmbH, Hauptstraße 1, 12345 Musterstadt",
        recipient="Max Mustermann, Gartenweg 5, 12345 Musterstadt",
        language="de",
        reference_number="RE-2024-0815",
        amounts=(
            Amount(Decimal("100.0"), "EUR"),
            Amount(Decimal("19.0"), "EUR"),
            Amount(Decimal("119.0"), "EUR"),
        ),
        ibans=RULES_RESULT.ibans,
        tags=("Strom", "Energie", "Rechnung"),
        confidence=92,
        filename="2024-03-14_Stromrechnung_Februar_2024",
    )
    assert rules.calls == [(INVOICE_TEXT, "scan_0042.pdf")]


def test_the_request_asks_for_strict_structured_output_with_the_document_types(server, rules):
    server.play("openai_chat_invoice")
    make_extractor(server, rules).extract(text=INVOICE_TEXT, original_filename="scan_0042.pdf")

    response_format = server.received[0].json()["response_format"]
    schema = response_format["json_schema"]["schema"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"]) >= {"absender", "empfaenger", "document_date"}
    assert "invoice" in schema["properties"]["document_type"]["enum"]
    assert schema["properties"]["tags"]["maxItems"] == MAX_TAGS


def test_a_partly_invalid_answer_keeps_valid_fields_and_the_rules_fill_the_rest(server, rules, caplog):
    recording = server.play("ollama_chat_partly_invalid")
    extractor = make_extractor(server, rules, api_key=None, model="llama3.1:8b")

    with caplog.at_level(logging.INFO, logger="documents.metadata.openai"):
        result = extractor.extract(text=INVOICE_TEXT, original_filename="scan_0042.pdf")

    assert_matches_recording(server.received[0], recording["exchanges"][0]["request"])
    from_the_model: dict[str, Any] = {
        "correspondent": "Stadtwerke Musterstadt GmbH",
        "recipient": "Max Mustermann Gartenweg 5 12345 Musterstadt",
        "reference_number": "RE-2024-0815",
        "amounts": (Amount(Decimal("19.0"), "EUR"),),  # the two malformed amounts are dropped
    }
    from_the_rules = ["filename", "sender", "document_type", "tags", "language", "title", "confidence"]
    from_the_rules += ["document_date", "ibans"]
    assert result == replace(RULES_RESULT, **from_the_model)
    assert all(getattr(result, name) == getattr(RULES_RESULT, name) for name in from_the_rules)
    assert "filename, absender, document_type, tags, language, title, confidence_score" in caplog.text


def test_an_api_error_returns_the_rules_result_and_logs_neither_key_nor_text(server, rules, caplog):
    recording = server.play("openai_chat_invalid_api_key")
    extractor = make_extractor(server, rules, api_key="sk-test-wrong-key")

    with caplog.at_level(logging.DEBUG):
        result = extractor.extract(text=INVOICE_TEXT, original_filename="scan_0042.pdf")

    assert_matches_recording(server.received[0], recording["exchanges"][0]["request"])
    assert result == RULES_RESULT
    assert "AuthenticationError, status 401, code invalid_api_key" in caplog.text
    assert "sk-test-wrong-key" not in caplog.text
    assert "Stadtwerke" not in caplog.text


def test_a_prose_answer_instead_of_json_returns_the_rules_result(server, rules, caplog):
    recording = server.play("openrouter_chat_prose")
    extractor = make_extractor(
        server,
        rules,
        api_key="sk-or-v1-test-recorded-key",
        base_url=f"{server.url}/api/v1",
        model="meta-llama/llama-3.1-8b-instruct",
    )

    result = extractor.extract(text=INVOICE_TEXT, original_filename="scan_0042.pdf")

    assert_matches_recording(server.received[0], recording["exchanges"][0]["request"])
    assert result == RULES_RESULT
    assert "content is not JSON" in caplog.text


def test_a_refusal_returns_the_rules_result(server, rules, caplog):
    server.play("openai_chat_refusal")

    result = make_extractor(server, rules).extract(text=INVOICE_TEXT, original_filename="scan_0042.pdf")

    assert result == RULES_RESULT
    assert "the model refused" in caplog.text


def test_an_api_that_answers_too_late_returns_the_rules_result(server, rules, caplog):
    server.play("openai_chat_invoice")
    server.delay = 1.0

    result = make_extractor(server, rules, timeout=0.2).extract(text=INVOICE_TEXT, original_filename="a.pdf")

    assert result == RULES_RESULT
    assert "APITimeoutError" in caplog.text


def test_long_text_is_cut_and_the_prompt_says_so(server, rules):
    server.play("openai_chat_invoice")
    text = INVOICE_TEXT + "x" * MAX_TEXT_CHARS + "THE END"

    make_extractor(server, rules).extract(text=text, original_filename="long.pdf")

    user_message = server.received[0].json()["messages"][1]["content"]
    assert f"truncated: only the first {MAX_TEXT_CHARS} of {len(text)} characters" in user_message
    assert INVOICE_TEXT in user_message
    assert "THE END" not in user_message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("filename", "2024-03-14_Rechnung/../../x"),
        ("filename", "Rechnung_ohne_Datum"),
        ("filename", "2024-03-14_" + "x" * 200),
        ("title", "..\\Windows\\system32"),
        ("title", "Rechnung\x1b[31m"),
        ("title", "Rechnung \u202efdp.exe"),
        ("title", '<img src=x onerror="alert(1)">'),
        ("title", "x" * 151),
        ("absender", "javascript:alert(1)"),
        ("reference_number", "RE 1; DROP TABLE"),
        ("document_type", "Rechnung"),
        ("document_date", "14.03.2024"),
        ("document_date", "1899-12-31"),
        ("document_date", (CLOCK_START.date() + timedelta(days=400)).isoformat()),
        ("language", "german"),
        ("confidence_score", 101),
        ("confidence_score", -1),
        ("confidence_score", True),
        ("confidence_score", 55.5),
        ("tags", ["a", "b", "c", "d", "e"]),
        ("tags", ["<b>bold</b>"]),
        ("monetary_amounts", [{"value": "12,50", "currency": "EUR"}]),
        ("monetary_amounts", [{"value": 12.5, "currency": "€"}]),
        ("monetary_amounts", [{"value": float("nan"), "currency": "EUR"}]),
        ("monetary_amounts", [{"value": 1e15, "currency": "EUR"}]),
    ],
)
def test_an_unsafe_or_implausible_value_is_rejected_on_its_own(key, value, clock):
    found, rejected = validated_metadata({key: value, "correspondent": "Stadtwerke"})

    assert rejected == [key]
    assert found == ExtractedMetadata(correspondent="Stadtwerke")


def test_plausible_values_are_normalised_rather_than_rejected():
    found, rejected = validated_metadata(
        {
            "filename": "2024-03-14_Strom Rechnung.pdf",
            "language": "DE",
            "document_type": "Invoice",
            "tags": ["Strom", "strom", "Energie"],
            "monetary_amounts": [{"value": "119.00", "currency": "eur"}, {"value": 5, "currency": None}],
            "confidence_score": 80.0,
        }
    )

    assert rejected == []
    assert found == ExtractedMetadata(
        filename="2024-03-14_Strom_Rechnung",
        language="de",
        document_type="invoice",
        tags=("Strom", "Energie"),
        amounts=(Amount(Decimal("119.00"), "EUR"), Amount(Decimal("5"), None)),
        confidence=80,
    )
