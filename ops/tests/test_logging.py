from __future__ import annotations

import json
import logging

from ops.logging import JsonFormatter


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
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: broken" in json.loads(line)["exception"]
