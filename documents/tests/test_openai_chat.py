"""The OpenAI-compatible chat client: what kind of failure a caller gets, and the JSON it reads.

What the metadata extractor makes of it is tested in test_metadata_openai.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from documents.integrations.openai_chat import ChatError, ChatFailure, OpenAIChatClient, answer_object
from documents.tests.http_replay import ReplayServer, running_replay_server

SCHEMA = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with running_replay_server() as replay:
        yield replay


def ask(base_url: str, *, timeout: float = 5) -> dict:
    client = OpenAIChatClient(
        api_key="sk-test-recorded-key", base_url=base_url, model="gpt-4o-mini", timeout=timeout, max_retries=0
    )
    return client.json_answer(system="Answer in JSON.", user="Hello", schema_name="test", schema=SCHEMA)


def test_a_rejected_key_is_a_configuration_failure_with_the_apis_status_and_code(server):
    server.play("openai_chat_invalid_api_key")

    with pytest.raises(ChatError) as raised:
        ask(f"{server.url}/v1")

    assert (raised.value.kind, raised.value.status, raised.value.code) == (
        ChatFailure.CONFIGURATION,
        401,
        "invalid_api_key",
    )


def test_no_answer_in_time_is_a_timeout_and_no_server_is_unreachable(server):
    server.play("openai_chat_invoice")
    server.delay = 1.0
    with pytest.raises(ChatError) as late:
        ask(f"{server.url}/v1", timeout=0.2)
    assert late.value.kind is ChatFailure.TIMEOUT

    with running_replay_server() as stopped:
        url = f"{stopped.url}/v1"
    with pytest.raises(ChatError) as nobody:
        ask(url)
    assert nobody.value.kind is ChatFailure.UNREACHABLE


def test_prose_instead_of_json_is_an_unusable_answer(server):
    server.play("openrouter_chat_prose")

    with pytest.raises(ChatError) as raised:
        ask(f"{server.url}/api/v1")

    assert raised.value.kind is ChatFailure.UNUSABLE_ANSWER


def completion(content: str) -> SimpleNamespace:
    message = SimpleNamespace(content=content, refusal=None)
    return SimpleNamespace(choices=[SimpleNamespace(message=message, finish_reason="stop")])


def test_json_in_a_markdown_fence_is_read_and_json_that_is_not_an_object_is_not():
    assert answer_object(completion('```json\n{"title": "Rechnung"}\n```')) == {"title": "Rechnung"}

    with pytest.raises(ChatError, match="not a JSON object"):
        answer_object(completion('["Rechnung"]'))
