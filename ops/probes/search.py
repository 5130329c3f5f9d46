"""The search probe: the built-in database search needs nothing; Meilisearch must answer."""

from __future__ import annotations

import logging

import meilisearch
from django.conf import settings
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchTimeoutError

from ops.probes.result import PROBE_TIMEOUT, CheckResult, error_text, failed, passed, unreachable

logger = logging.getLogger(__name__)


def probe_search(*, timeout: float = PROBE_TIMEOUT, thorough: bool = False) -> CheckResult:
    """Which search backend is in use (``backend``) and, for Meilisearch, whether it answers.

    ``thorough`` also reads the index, which needs the API key whenever the server has a
    master key: a key that is refused, missing, or not needed at all (anyone who reaches
    the server reads every document) fails.
    """
    url = settings.MEILISEARCH_URL
    if not url:
        # The database answers for it; the database probe covers it.
        return passed(
            "search", "MEILISEARCH_URL is not set: the built-in database search is in use", backend="database"
        )
    api_key = settings.MEILISEARCH_API_KEY
    # The client takes the timeout in whole seconds.
    client = meilisearch.Client(url, api_key, timeout=max(1, round(timeout)))
    try:
        client.health()
        if thorough:
            # 404 (no index yet) still proves the key was accepted.
            client.get_raw_index(settings.MEILISEARCH_INDEX_NAME)
    except MeilisearchApiError as exc:
        if exc.status_code in (401, 403):
            if api_key:
                return failed(
                    "search", f"Meilisearch at {url} refuses MEILISEARCH_API_KEY", "use a valid key"
                )
            return failed(
                "search",
                f"Meilisearch at {url} requires a key and MEILISEARCH_API_KEY is not set",
                "set MEILISEARCH_API_KEY",
            )
        if exc.status_code != 404:
            return unreachable(
                "search", f"Meilisearch at {url} answers {exc.status_code}: {exc.code}", "see its log"
            )
    except (MeilisearchCommunicationError, MeilisearchTimeoutError) as exc:
        reason = f"Meilisearch at {url} does not answer ({error_text(exc)})"
        logger.warning("search probe: %s", reason)
        return unreachable("search", reason, "check MEILISEARCH_URL")
    if thorough and not api_key:
        return failed(
            "search",
            f"Meilisearch at {url} answers without any key: anyone who reaches it reads every document",
            "start Meilisearch with MEILI_MASTER_KEY and set MEILISEARCH_API_KEY",
        )
    accepted = " and accepts the API key" if thorough else ""
    return passed("search", f"Meilisearch at {url} answers{accepted}", backend="meilisearch")
