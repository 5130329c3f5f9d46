"""The Azure AI Document Intelligence client: text from the "read" model, over plain REST.

The service works asynchronously: the PDF is posted to ``...:analyze``, which answers
``202 Accepted`` with an ``Operation-Location`` to poll until the status is final.
The OCR engine that uses it is ``documents/pipeline/ocr/azure.py``.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

API_VERSION = "2024-11-30"
# Per HTTP call; the whole read is bounded by the client's ``timeout`` as well.
REQUEST_TIMEOUT = (10.0, 120.0)
MAX_RETRY_AFTER = 60.0
RUNNING_STATUSES = ("notStarted", "running")
FAILED_STATUSES = ("failed", "canceled", "skipped")
# Azure's error codes for a request it will not carry out as sent, whatever the moment.
REQUEST_REFUSED_CODES = frozenset({"InvalidRequest", "InvalidArgument"})


class AzureFailure(enum.StrEnum):
    """Why Azure read nothing, for the caller to decide on (try later, or not with Azure)."""

    UNREACHABLE = "unreachable"  # no connection, or it broke off
    TIMEOUT = "timeout"  # the read did not finish within the client's timeout
    THROTTLED = "throttled"  # still 429 when no time was left to wait
    CONFIGURATION = "configuration"  # 401, 403, 404: the key or the endpoint is wrong
    SERVICE = "service"  # 5xx, or an operation Azure failed, canceled or skipped on its side
    DOCUMENT_REFUSED = "document_refused"  # this document, as sent: too large, corrupted, a format it refuses
    BAD_ANSWER = "bad_answer"  # an answer not as documented (not JSON, no Operation-Location, ...)


class AzureError(Exception):
    """Azure could not read the document; the message is fit to show a user (no key in it)."""

    def __init__(self, message: str, *, kind: AzureFailure, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status  # the HTTP status of the answer that failed, if one came


@dataclass(frozen=True)
class AzureReadResult:
    """The text Azure found: all of it, and page by page."""

    text: str
    pages: list[str]


class AzureReadClient:
    """Reads PDFs with the ``prebuilt-read`` model of one Document Intelligence resource.

    ``endpoint`` is the resource's URL, e.g. ``https://my-ocr.cognitiveservices.azure.com``.
    Polls wait for Azure's ``Retry-After``, at least ``poll_interval`` seconds; ``sleep`` and
    ``clock`` are injectable so tests need not wait.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        timeout: float = 300,
        poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._api_key = api_key
        self._sleep = sleep
        self._clock = clock
        self._session = requests.Session()
        self._session.headers["Ocp-Apim-Subscription-Key"] = api_key

    @classmethod
    def from_settings(cls) -> AzureReadClient:
        """The configured resource, with a read bounded to leave the step time to finish."""
        return cls(
            endpoint=settings.AZURE_DOCUMENT_INTELLIGENCE_ENDPOINT or "",
            api_key=settings.AZURE_DOCUMENT_INTELLIGENCE_KEY or "",
            timeout=max(settings.STEP_TIMEOUT - 30, 10),
        )

    def __repr__(self) -> str:
        return f"AzureReadClient(endpoint={self.endpoint!r})"

    def read_pdf(self, path: Path) -> AzureReadResult:
        """The text of the PDF at ``path``.

        Raises AzureError when Azure refuses, fails or does not finish within ``timeout``
        seconds, and OSError when the file cannot be read.
        """
        deadline = self._clock() + self.timeout
        started = self._post_pdf(path.read_bytes(), deadline)
        operation_url = self._operation_url(started)
        wait = self._retry_after(started)
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise AzureError(
                    f"Azure OCR did not finish within {self.timeout:g} seconds.", kind=AzureFailure.TIMEOUT
                )
            self._sleep(min(wait, remaining))
            response = self._send("GET", operation_url, deadline)
            operation = self._json(response)
            status = operation.get("status")
            if status == "succeeded":
                return parse_analyze_result(operation.get("analyzeResult"))
            if status in FAILED_STATUSES:
                raise AzureError(
                    f"Azure OCR {status}: {self._describe_error(operation)}",
                    kind=_operation_failure(status, operation),
                )
            if status not in RUNNING_STATUSES:
                raise AzureError(
                    f"Azure OCR answered with an unknown status {status!r}.", kind=AzureFailure.BAD_ANSWER
                )
            wait = self._retry_after(response)

    def _post_pdf(self, pdf: bytes, deadline: float) -> requests.Response:
        url = f"{self.endpoint}/documentintelligence/documentModels/prebuilt-read:analyze"
        # Python slices by code point; Azure's default "textElements" offsets would drift
        # from ours at every combining accent or emoji.
        params = {"api-version": API_VERSION, "stringIndexType": "unicodeCodePoint"}
        response = self._send(
            "POST", url, deadline, params=params, data=pdf, headers={"Content-Type": "application/pdf"}
        )
        if response.status_code != 202:
            raise AzureError(
                f"Azure OCR answered HTTP {response.status_code} instead of 202 Accepted.",
                kind=AzureFailure.BAD_ANSWER,
                status=response.status_code,
            )
        return response

    def _send(self, method: str, url: str, deadline: float, **kwargs: Any) -> requests.Response:
        """One request, repeated while Azure throttles (429) and time is left."""
        while True:
            try:
                # No redirects: requests would carry the key header along to any host.
                response = self._session.request(
                    method, url, timeout=REQUEST_TIMEOUT, allow_redirects=False, **kwargs
                )
            except requests.RequestException as exc:
                raise AzureError(
                    f"Could not reach Azure OCR at {self.endpoint} ({type(exc).__name__}).",
                    kind=AzureFailure.UNREACHABLE,
                ) from None
            if response.status_code == 429:
                wait = self._retry_after(response)
                if self._clock() + wait < deadline:
                    logger.info("Azure OCR is throttling; retrying in %g s", wait)
                    self._sleep(wait)
                    continue
            if response.status_code >= 400:
                raise AzureError(
                    self._http_error_message(response),
                    kind=_http_failure(response.status_code),
                    status=response.status_code,
                )
            return response

    def _operation_url(self, response: requests.Response) -> str:
        url = response.headers.get("Operation-Location", "")
        # The key goes along with every poll, so only ever to the endpoint it belongs to.
        ours, theirs = urlsplit(self.endpoint), urlsplit(url)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise AzureError(
                "Azure OCR did not say where to fetch the result (Operation-Location).",
                kind=AzureFailure.BAD_ANSWER,
            )
        return url

    def _retry_after(self, response: requests.Response) -> float:
        """How long Azure asks us to wait, never less than ``poll_interval`` (no busy polling)."""
        try:
            seconds = float(response.headers.get("Retry-After", ""))
        except ValueError:
            seconds = self.poll_interval
        if not math.isfinite(seconds):
            seconds = self.poll_interval
        return min(max(seconds, self.poll_interval), MAX_RETRY_AFTER)

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise AzureError(
                "Azure OCR answered with something that is not JSON.", kind=AzureFailure.BAD_ANSWER
            ) from None
        if not isinstance(body, dict):
            raise AzureError(
                "Azure OCR answered with JSON of an unexpected shape.", kind=AzureFailure.BAD_ANSWER
            )
        return body

    def _http_error_message(self, response: requests.Response) -> str:
        reasons = {
            401: "the key was rejected",
            403: "access was denied",
            404: "the endpoint was not found",
            429: "too many requests, try again later",
        }
        reason = reasons.get(response.status_code, "the request failed")
        try:
            detail = self._describe_error(self._json(response))
        except AzureError:
            detail = ""
        message = f"Azure OCR: {reason} (HTTP {response.status_code})."
        return self._redact(f"{message} {detail}".strip())

    def _describe_error(self, body: dict[str, Any]) -> str:
        """Azure's ``error`` object as one sentence: its most specific message and code."""
        error, described = body.get("error"), "no details given"
        for _ in range(5):  # innererror nests; a few levels is all Azure uses
            if not isinstance(error, dict):
                break
            message, code = error.get("message"), error.get("code")
            if isinstance(message, str) and message:
                described = f"{message} ({code})" if isinstance(code, str) and code else message
            error = error.get("innererror")
        return self._redact(described)

    def _redact(self, message: str) -> str:
        return message.replace(self._api_key, "***") if self._api_key else message


def _http_failure(status: int) -> AzureFailure:
    if status in (401, 403, 404):
        return AzureFailure.CONFIGURATION
    if status == 429:
        return AzureFailure.THROTTLED
    if status >= 500:
        return AzureFailure.SERVICE
    return AzureFailure.DOCUMENT_REFUSED


def _operation_failure(status: object, operation: dict[str, Any]) -> AzureFailure:
    """A failed operation refused the document when Azure's code says the request was
    invalid (a corrupted file, a format it does not read); anything else failed on its side."""
    error = operation.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if status == "failed" and code in REQUEST_REFUSED_CODES:
        return AzureFailure.DOCUMENT_REFUSED
    return AzureFailure.SERVICE


def parse_analyze_result(result: object) -> AzureReadResult:
    """The text of a succeeded operation's ``analyzeResult``; AzureError if malformed."""
    if not isinstance(result, dict) or not isinstance(result.get("content"), str):
        raise AzureError("Azure OCR succeeded but sent no text content.", kind=AzureFailure.BAD_ANSWER)
    content: str = result["content"]
    pages = result.get("pages", [])
    if not isinstance(pages, list) or not all(isinstance(page, dict) for page in pages):
        raise AzureError(
            "Azure OCR sent page information of an unexpected shape.", kind=AzureFailure.BAD_ANSWER
        )
    return AzureReadResult(text=content, pages=[_page_text(page, content) for page in pages])


def _page_text(page: dict[str, Any], content: str) -> str:
    lines = page.get("lines")
    if isinstance(lines, list) and lines:
        texts = (line.get("content") for line in lines if isinstance(line, dict))
        return "\n".join(text for text in texts if isinstance(text, str))
    # Without lines, the page's spans still say which part of the whole content is on it.
    spans = page.get("spans")
    if not isinstance(spans, list):
        return ""
    return "".join(_span_text(span, content) for span in spans)


def _span_text(span: object, content: str) -> str:
    if not isinstance(span, dict):
        return ""
    offset, length = span.get("offset"), span.get("length")
    if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length < 0:
        raise AzureError("Azure OCR sent a text span of an unexpected shape.", kind=AzureFailure.BAD_ANSWER)
    return content[offset : offset + length]
