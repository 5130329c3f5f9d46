from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import requests
from gunicorn.config import Config  # type: ignore[import-untyped]  # gunicorn ships no types

from accounts.models import AuditAction, AuditLog
from conftest import LiveServer, current_database_url, log_tail, wait_until
from ops.logging import GunicornLogger, JsonFormatter, TextFormatter

# The embedded defaults for a started server, whatever services the outer run uses.
NO_SERVICES = ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


def test_json_lines_carry_time_level_logger_message_and_extras():
    record = logging.LogRecord("documents", logging.WARNING, __file__, 1, "step %s failed", ("ocr",), None)
    record.document_id = 42
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "documents"
    assert entry["message"] == "step ocr failed"
    assert entry["document_id"] == 42
    assert entry["time"].endswith("+00:00")
    assert "\n" not in line


def test_exceptions_stay_on_one_line():
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: broken" in json.loads(line)["exception"]


# --- Log forging: user input never starts a line of its own ----------------------------------

# What a client sends to forge lines: a newline and a fake audit line, a carriage return and
# a terminal escape that erases the line on screen, a Unicode line separator, a bidi override.
FORGED_AUDIT = "\n2030-01-01 00:00:00,000 INFO docuelevate.audit: audit: login by admin from 10.0.0.1"
FORGED = f"x{FORGED_AUDIT}\r\x1b[2K AUDIT login_success user=admin\u2028AUDIT login_success\u202e"
# The same, as the text log shows it: visible escapes on the event's one line.
ESCAPED = (
    r"x\n2030-01-01 00:00:00,000 INFO docuelevate.audit: audit: login by admin from 10.0.0.1"
    r"\r\x1b[2K AUDIT login_success user=admin\u2028AUDIT login_success\u202e"
)


def test_text_lines_escape_control_characters_in_the_message_and_its_arguments() -> None:
    record = logging.LogRecord("docuelevate.audit", logging.INFO, __file__, 1, "by %s\tnow", (FORGED,), None)
    line = TextFormatter().format(record)
    assert "\n" not in line
    assert line.endswith(f"docuelevate.audit: by {ESCAPED}\\tnow")


def test_a_traceback_stays_indented_below_its_line_whatever_the_exception_says() -> None:
    try:
        raise ValueError(f"cannot read {FORGED}")
    except ValueError:
        record = logging.LogRecord("documents", logging.ERROR, __file__, 1, "step failed", (), sys.exc_info())
    first, *below = TextFormatter().format(record).split("\n")
    assert first.endswith("documents: step failed")
    assert below[0] == "  Traceback (most recent call last):"
    # The message's own newline stays, indented like every line below the record's first.
    head, forged_line = ESCAPED.split(r"\n")
    assert below[-2:] == [f"  ValueError: cannot read {head}", f"  {forged_line}"]
    assert all(line.startswith("  ") for line in below)


def test_gunicorns_own_lines_in_text_are_one_line_each() -> None:
    config = Config()
    config.set("accesslog", "-")
    gunicorn_logger = GunicornLogger(config)
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '"GET /%s"', (FORGED,), None)
    for log in (gunicorn_logger.error_log, gunicorn_logger.access_log):
        for handler in log.handlers:
            line = handler.format(record)
            assert "\n" not in line
            assert ESCAPED in line


def test_json_lines_escape_what_some_readers_take_for_a_line_end() -> None:
    message = f"a\u2028b\u2029c\x85d\x1be{FORGED}"
    record = logging.LogRecord("docuelevate.csp", logging.WARNING, __file__, 1, "%s", (message,), None)
    record.csp = {"blocked-uri": message}
    line = JsonFormatter().format(record)
    assert line.splitlines() == [line]
    entry = json.loads(line)
    assert entry["message"] == entry["csp"]["blocked-uri"] == message


def lines_with(log: Path, marker: str, count: int) -> list[str]:
    """The lines of ``log`` that contain ``marker``, once there are ``count`` of them."""

    def found() -> list[str] | None:
        lines = [line for line in log.read_text(errors="replace").split("\n") if marker in line]
        return lines if len(lines) >= count else None

    return wait_until(
        found, timeout=10, what=f"{count} lines with {marker!r}", interval=0.1, details=lambda: log_tail(log)
    )


def test_a_csp_report_and_a_sign_in_name_cannot_forge_lines_in_the_text_log(
    transactional_db: None,
    process_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
) -> None:
    env = {name: value for name, value in process_env.items() if name not in NO_SERVICES}
    env.update(
        DATABASE_URL=current_database_url(),
        LOG_FORMAT="text",
        LOG_LEVEL="INFO",
        GUNICORN_CMD_ARGS="--logger-class ops.logging.GunicornLogger",
    )
    server = start_gunicorn(env)

    report = {
        "csp-report": {"document-uri": FORGED, "effective-directive": "script-src", "blocked-uri": FORGED}
    }
    posted = requests.post(
        f"{server.url}/api/csp-report",
        data=json.dumps(report),
        headers={"Content-Type": "application/csp-report"},
        timeout=30,
    )
    assert posted.status_code == 204

    browser = requests.Session()
    form = browser.get(f"{server.url}/accounts/login/", timeout=30)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert csrf, form.text[-2000:]
    refused = browser.post(
        f"{server.url}/accounts/login/",
        data={"login": FORGED, "password": "wrong-password", "csrfmiddlewaretoken": csrf.group(1)},
        timeout=30,
    )
    assert refused.status_code == 200  # the form again, with its error

    # One line per event, each carrying the whole input with its control characters escaped.
    csp_lines = lines_with(server.log, "CSP violation:", 1)
    assert len(csp_lines) == 1, log_tail(server.log)
    assert f"blocked {ESCAPED} on {ESCAPED}" in csp_lines[0]
    audit_lines = lines_with(server.log, "audit: login_failed by", 1)
    assert len(audit_lines) == 1, log_tail(server.log)
    assert f"audit: login_failed by {ESCAPED} from 127.0.0.1" in audit_lines[0]
    # Nothing the client sent begins a line, and nothing else the log holds mentions it.
    text = server.log.read_text(errors="replace")
    for raw in ("\x1b", "\r", "\u2028", "\u202e"):
        assert raw not in text
    assert [line for line in text.split("\n") if "login_success" in line] == [csp_lines[0], audit_lines[0]]
    # The audit trail in the database keeps the name as it was sent.
    assert AuditLog.objects.get(action=AuditAction.LOGIN_FAILED).actor_name == FORGED
