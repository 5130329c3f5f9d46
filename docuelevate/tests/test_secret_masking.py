"""Secrets never reach the log or an error report, whatever quotes them."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from docuelevate.security import MASK, mask_secrets

MEILI_KEY = "meili-master-key-9f8e7d6c5b4a"


@pytest.fixture
def captured(settings):
    """The project's own logging set-up (handler, filter, formatter) writing to a buffer."""
    settings.MEILISEARCH_API_KEY = MEILI_KEY
    stream = io.StringIO()

    def configure(log_format: str) -> None:
        logging_config: dict[str, Any] = django_settings.LOGGING
        handler = {**logging_config["handlers"]["stdout"], "formatter": log_format, "stream": stream}
        logging.config.dictConfig(
            {**django_settings.LOGGING, "disable_existing_loggers": False, "handlers": {"stdout": handler}}
        )

    yield stream, configure
    logging.config.dictConfig(django_settings.LOGGING)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_in_messages_arguments_and_tracebacks_are_masked(captured, settings, log_format):
    stream, configure = captured
    configure(log_format)
    logger = logging.getLogger("docuelevate.test")
    logger.warning("connecting to %s", "postgresql://docu:db-pass-4711@db.internal:5432/docs")
    logger.warning("session key is %s", settings.SECRET_KEY)
    try:
        raise ConnectionError(f"redis://:redis-pass-0815@cache:6379/0 refused; key {MEILI_KEY}")
    except ConnectionError:
        logger.exception("search engine unreachable")
    logger.warning("pushing to https://kuma.example/api/push/Abc123Token?status=up&msg=OK")

    output = stream.getvalue()
    for secret in ("db-pass-4711", settings.SECRET_KEY, "redis-pass-0815", MEILI_KEY, "Abc123Token"):
        assert secret not in output
    assert f"postgresql://docu:{MASK}@db.internal:5432/docs" in output
    assert "search engine unreachable" in output
    if log_format == "json":
        lines = [json.loads(line) for line in output.splitlines()]
        assert MASK in lines[2]["exception"]


def test_ordinary_text_is_left_alone():
    text = "Invoice 2024-03 from Stadtwerke, total 120.50 EUR; see https://docs.example.org/files/12?page=2"
    assert mask_secrets(text) == text


def test_the_error_report_hides_passwords_inside_urls(settings):
    settings.DATABASE_URL = "postgresql://docu:db-pass-4711@db.internal:5432/docs"
    settings.CELERY_BROKER_URL = "redis://:redis-pass-0815@cache:6379/0"
    request = RequestFactory().get("/boom")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        report = ExceptionReporter(request, *sys.exc_info()).get_traceback_text()
    assert "db-pass-4711" not in report
    assert "redis-pass-0815" not in report
    assert settings.SECRET_KEY not in report
    assert "db.internal:5432/docs" in report  # the rest of the setting stays readable
