"""A client of any OpenAI-compatible chat completions API that answers with one JSON object.

Works with OpenAI, Azure OpenAI (its ``/openai/v1/`` endpoint), Ollama, OpenRouter and
LiteLLM: anything that speaks ``POST {base_url}/chat/completions``. What the object means
is the caller's business (``documents/metadata/openai.py``); this module only gets it.
"""

from __future__ import annotations

import enum
import json
import re
from typing import Any

import openai
from django.conf import settings

# Local servers (Ollama, LiteLLM without auth) need no key, but the SDK insists on one;
# Ollama's own documentation uses a dummy value the same way.
NO_KEY_PLACEHOLDER = "no-key-needed"

_CODE_FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL)


class ChatFailure(enum.StrEnum):
    """Why no answer came, for the caller to decide on."""

    UNREACHABLE = "unreachable"  # no connection to the API
    TIMEOUT = "timeout"  # no answer within the client's timeout
    RATE_LIMITED = "rate_limited"  # 429: too many requests, or the quota is spent
    CONFIGURATION = "configuration"  # 401, 403, 404: the key, the model or the URL is wrong
    SERVICE = "service"  # 5xx, or another failure on the API's side
    REQUEST_REFUSED = "request_refused"  # another 4xx: the API will not take this request
    UNUSABLE_ANSWER = "unusable_answer"  # it answered, but not with a JSON object


class ChatError(Exception):
    """No usable answer. ``message`` names the failure without the key or the conversation."""

    def __init__(
        self, message: str, *, kind: ChatFailure, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status  # the API's HTTP status, when it answered with an error
        self.code = code  # the API's error code, e.g. "invalid_api_key"


class OpenAIChatClient:
    """Asks one model of one OpenAI-compatible API, for answers in a given JSON schema.

    ``api_key`` may be empty for servers that need none. ``timeout`` is per request;
    ``max_retries`` are the SDK's own retries of connection errors, 429 and 5xx.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        model: str,
        timeout: float = 60,
        max_retries: int = 1,
    ) -> None:
        self.model = model
        self._client = openai.OpenAI(
            api_key=api_key or NO_KEY_PLACEHOLDER,
            base_url=base_url or None,
            timeout=timeout,
            max_retries=max_retries,
        )

    @classmethod
    def from_settings(cls) -> OpenAIChatClient:
        """The configured API: OPENAI_API_KEY, OPENAI_BASE_URL, AI_MODEL."""
        return cls(
            api_key=settings.OPENAI_API_KEY, base_url=settings.OPENAI_BASE_URL, model=settings.AI_MODEL
        )

    def json_answer(
        self, *, system: str, user: str, schema_name: str, schema: dict[str, Any]
    ) -> dict[str, Any]:
        """The model's answer to ``user`` under ``system``, asked for in strict ``schema``.

        Returns the JSON object of the first choice; whether its fields are any good is the
        caller's to check. Raises ChatError.
        """
        try:
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": schema_name, "strict": True, "schema": schema},
                },
            )
        except openai.OpenAIError as exc:
            raise _api_error(exc) from None
        return answer_object(completion)


def answer_object(completion: Any) -> dict[str, Any]:
    """The JSON object in the first choice of a chat completion, or ChatError."""

    def unusable(reason: str) -> ChatError:
        return ChatError(reason, kind=ChatFailure.UNUSABLE_ANSWER)

    choices = getattr(completion, "choices", None)
    if not choices:
        raise unusable("no choices")
    message = getattr(choices[0], "message", None)
    if getattr(message, "refusal", None):
        raise unusable("the model refused")
    content = getattr(message, "content", None)
    if not isinstance(content, str):
        raise unusable("no text content")
    # Models without structured output support like to wrap JSON in a Markdown fence.
    fenced = _CODE_FENCE.match(content.strip())
    try:
        answer = json.loads(fenced.group(1) if fenced else content)
    except json.JSONDecodeError:
        raise unusable(f"content is not JSON ({getattr(choices[0], 'finish_reason', '?')})") from None
    if not isinstance(answer, dict):
        raise unusable("content is not a JSON object")
    return answer


def _api_error(exc: openai.OpenAIError) -> ChatError:
    """The SDK's error as a ChatError: its class, status and code, never its text (which
    may quote the key or the request)."""
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "code", None)
    kind = ChatFailure.SERVICE
    # APITimeoutError is a kind of APIConnectionError, so it is asked first.
    if isinstance(exc, openai.APITimeoutError):
        kind = ChatFailure.TIMEOUT
    elif isinstance(exc, openai.APIConnectionError):
        kind = ChatFailure.UNREACHABLE
    elif isinstance(exc, openai.APIStatusError):
        if exc.status_code in (401, 403, 404):
            kind = ChatFailure.CONFIGURATION
        elif exc.status_code == 429:
            kind = ChatFailure.RATE_LIMITED
        elif exc.status_code < 500:
            kind = ChatFailure.REQUEST_REFUSED
    return ChatError(
        f"{type(exc).__name__}, status {status}, code {code}",
        kind=kind,
        status=status,
        code=code if isinstance(code, str) else None,
    )
