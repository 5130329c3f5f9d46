"""Log formatting and log context.

``LOG_FORMAT=json`` writes one JSON object per line for log shippers; ``text`` is for people.
Either way every line written while a request or a Celery task runs carries who and what it
belongs to: the request id and user id (set by ``ops.requestlog``), or the task id and
document id (set here from Celery's task signals). The context lives in a ContextVar, so
code that logs needs no request or task argument to be traceable.

gunicorn's own lines (start, workers, signals) go through ``GunicornLogger``, and a Celery
worker keeps the project's logging instead of installing its own (``docuelevate.celery``),
so every process of a deployment writes the same format.

Each record is one line whatever its message holds, so logged input (a user name tried at
sign-in, a CSP report, a file name) cannot write lines of its own, such as a fake audit
line: the text formats write control characters as visible escapes (a newline as ``\n``)
and indent a traceback under its line; JSON escapes them by construction.
"""

from __future__ import annotations

import datetime
import inspect
import json
import logging
import logging.config
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.functional import LazyObject, empty
from gunicorn.glogging import Logger as GunicornBaseLogger  # type: ignore[import-untyped]  # gunicorn ships no types

if TYPE_CHECKING:
    from django.http import HttpRequest

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is kept.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Extras that are not written: Django's ``request`` renders as the raw path with its query
# string, which may hold a reset key or a token; the access line carries the route instead.
_UNWRITTEN_EXTRAS = frozenset({"request"})
# The context fields, in the order the text format shows them.
CONTEXT_FIELDS = ("request_id", "user_id", "route", "task_id", "document_id")


# --- The context of the work in progress -----------------------------------------------------


@dataclass(frozen=True)
class LogContext:
    """What the lines written now belong to: a request, or a Celery task."""

    request_id: str | None = None
    # The request itself, so the user and the route are read when a line is written: the
    # user is known only after authentication (for API tokens, inside the view).
    request: HttpRequest | None = None
    task_id: str | None = None
    document_id: int | None = None

    def fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {"request_id": self.request_id}
        if self.request is not None:
            values["user_id"] = request_user_id(self.request)
            # As ops.middleware.route_label names it, without resolving an unresolved path.
            match = getattr(self.request, "resolver_match", None)
            if match is not None:
                values["route"] = match.view_name if match.url_name else match.route
        values["task_id"] = self.task_id
        values["document_id"] = self.document_id
        return {name: value for name, value in values.items() if value is not None}


_context: ContextVar[LogContext | None] = ContextVar("log_context", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[LogContext]:
    """Lines written inside the block carry ``fields`` (see LogContext)."""
    context = LogContext(**fields)
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


def set_log_context(**fields: Any) -> None:
    """Make ``fields`` the context from now on in this thread or task, with no end: for a
    request, whose last lines (Django's own, after the middleware) come after any block."""
    _context.set(LogContext(**fields))


def clear_log_context(**_: Any) -> None:
    _context.set(None)


def request_user_id(request: HttpRequest) -> int | None:
    """The signed-in user's id if authentication has already run, else None.

    Never triggers authentication itself: a log line must not cost a session read and a
    query, nor run half-way through a request before the user is known.
    """
    user = request.__dict__.get("user")  # absent until AuthenticationMiddleware ran
    if isinstance(user, LazyObject):
        user = user._wrapped  # an unevaluated lazy user is "not known yet", not anonymous
        if user is empty:
            return None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    user_id: int | None = user.pk
    return user_id


class ContextFilter(logging.Filter):
    """Stamps the current request's or task's fields onto every record a handler writes;
    values a caller passed with ``extra=`` win."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        if context is not None:
            for name, value in context.fields().items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


# --- Formats ---------------------------------------------------------------------------------

# What lets logged input end its line or change what a reader sees of the lines before it:
# C0 controls (newline, carriage return, escape ...), DEL and the C1 controls (U+0085 ends a
# line for some readers, U+009B starts a terminal escape), the Unicode line and paragraph
# separators, and the bidirectional overrides and isolates that reorder displayed text.
_UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# json.dumps escapes the C0 controls itself; with ensure_ascii=False it writes the others raw.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x7F, 0x2070) if _UNSAFE_CHARACTER.match(chr(code))}
# Every line of a record after its first starts with this, so no line a traceback carries
# (an exception's message may quote input) can pass for a record of its own.
CONTINUATION = "  "


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    code = ord(character)
    return _SHORT_ESCAPES.get(character) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_control_characters(text: str) -> str:
    """``text`` with the characters above written as Python writes them in a string literal:
    ``\\n``, ``\\r``, ``\\t``, ``\\x1b``, ``\\u2028``. Backslashes stay as they are, so paths
    remain readable; an escape in the log may therefore also be what was sent."""
    return _UNSAFE_CHARACTER.sub(_escape, text)


def _masked(value: Any, secrets: list[str]) -> Any:
    """``value`` with ``secrets``, URL passwords and token parameters masked, in dicts and lists too."""
    from docuelevate.security import mask_secrets  # imports Django's debug views: only when used

    if isinstance(value, str):
        return mask_secrets(value, secrets)
    if isinstance(value, dict):
        return {key: _masked(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, secrets) for item in value]
    return value


def _configured_secrets() -> list[str]:
    """The configured secret values; none in gunicorn's master process, which never loads
    the settings (there only the patterns, URL passwords and token parameters, are masked)."""
    from django.conf import settings

    from docuelevate.security import secret_values

    return secret_values() if settings.configured else []


class SafeSecretMaskingFilter(logging.Filter):
    """docuelevate.security.SecretMaskingFilter where the settings may not be loaded (gunicorn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from django.conf import settings

        from docuelevate.security import SecretMaskingFilter, mask_secrets

        if settings.configured:
            return SecretMaskingFilter().filter(record)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = mask_secrets(message, [])
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    """Render a record as one line of JSON with time, level, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extras = {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRIBUTES and key not in _UNWRITTEN_EXTRAS and not key.startswith("_")
        }
        if extras:
            # SecretMaskingFilter masks the message; extras (a task's arguments, a URL
            # someone passed along) are masked here.
            entry.update(_masked(extras, _configured_secrets()))
        if record.exc_info or record.exc_text:
            # exc_text first: a filter may have masked it (docuelevate.security).
            entry["exception"] = record.exc_text or (
                self.formatException(record.exc_info) if record.exc_info else ""
            )
        # Only strings hold these characters, so the escaped line is still the same JSON.
        return json.dumps(entry, default=str, ensure_ascii=False).translate(_JSON_ESCAPES)


class OneLineFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose record is one line, control characters in the message,
    its arguments and every other field escaped, with any traceback or stack indented below."""

    @classmethod
    def like(cls, formatter: logging.Formatter | None) -> OneLineFormatter:
        """The same format as ``formatter`` (gunicorn's own, say), one line per record."""
        if formatter is None:
            return cls()
        return cls(formatter._fmt, formatter.datefmt)

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = escape_control_characters(self.formatMessage(record))
        if record.exc_info and not record.exc_text:
            # Kept on the record, as logging.Formatter does: the next handler reuses it.
            record.exc_text = self.formatException(record.exc_info)
        blocks = [record.exc_text or "", self.formatStack(record.stack_info) if record.stack_info else ""]
        below = [
            f"\n{CONTINUATION}{escape_control_characters(text)}"
            for block in blocks
            if block
            for text in block.split("\n")
        ]
        return line + "".join(below)


class TextFormatter(OneLineFormatter):
    """``time LEVEL logger: message [request_id=… user_id=…]``, for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = [f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name)]
        return f"{line} [{' '.join(context)}]" if context else line


def log_format() -> str:
    """LOG_FORMAT as the settings read it; also for processes that have no settings loaded."""
    from docuelevate.env import env_choice

    return env_choice("LOG_FORMAT", "text", ("text", "json"))


# --- gunicorn --------------------------------------------------------------------------------


class GunicornLogger(GunicornBaseLogger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's own log in LOG_FORMAT (``--logger-class ops.logging.GunicornLogger``), with
    secrets masked as in the application's lines.

    With ``json``, the master's and workers' lines are JSON objects too. Requests that reach
    Django are logged by ``ops.requestlog`` (with request id, user and route), so gunicorn's
    access line would only repeat them, with the raw path; it is written only for answers
    Django never gave (probes, bodies refused at the door), without the query string.
    """

    json = False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.json = log_format() == "json"
        masking = SafeSecretMaskingFilter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(masking)
                # The access line quotes the request line and headers as the client sent them.
                formatter = JsonFormatter() if self.json else OneLineFormatter.like(handler.formatter)
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: datetime.timedelta) -> None:
        if not self.json:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        headers = {str(name).lower() for name, _value in getattr(resp, "headers", [])}
        if "x-request-id" in headers:
            return  # ops.requestlog wrote this request's line
        status = str(resp.status).split(None, 1)[0]
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "-")
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "status": int(status) if status.isdigit() else status,
                "duration_ms": round(request_time.total_seconds() * 1000, 1),
            },
        )


# --- Celery ----------------------------------------------------------------------------------

_task_tokens: dict[str, Token[LogContext | None]] = {}
_document_first: dict[str, bool] = {}


def _takes_document_first(task: Any) -> bool:
    """Whether the task's first parameter is ``document_id`` (the document tasks)."""
    name = str(getattr(task, "name", ""))
    if name not in _document_first:
        try:
            parameters = list(inspect.signature(task.run).parameters)
        except (TypeError, ValueError):
            parameters = []
        _document_first[name] = bool(parameters) and parameters[0] == "document_id"
    return _document_first[name]


def task_document_id(task: Any, args: Any, kwargs: Any) -> int | None:
    """The document a task works on: its ``document_id`` keyword or first argument."""
    value = (kwargs or {}).get("document_id")
    if value is None and args and _takes_document_first(task):
        value = args[0]
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def on_task_prerun(
    task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    """Celery's task_prerun: the task's lines carry its id and document."""
    context = LogContext(task_id=task_id, document_id=task_document_id(task, args, kwargs))
    _task_tokens[task_id or ""] = _context.set(context)


def on_task_postrun(task_id: str | None = None, **_: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    try:
        if token is not None:
            _context.reset(token)
            return
    except ValueError:
        pass  # set in another context (a pool that moved the task); clear instead
    _context.set(None)


def configure_logging(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: ``config``, and Python's warnings (deprecations, Celery's
    security warning) as log lines in the same format instead of bare text on stderr."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def configure_worker_logging(**_: Any) -> None:
    """Celery's setup_logging: keep the project's LOGGING (format, context, secret masking)
    instead of the handler Celery would put on the root logger in its place."""
    from django.conf import settings

    configure_logging(settings.LOGGING)


def on_worker_init(instance: Any = None, **_: Any) -> None:
    """Celery's celeryd_init: with JSON logs, the banner (many lines of text on stdout)
    becomes one line of JSON once the worker is set up (``on_worker_after_setup``)."""
    if instance is not None and log_format() == "json":
        instance.quiet = True


def on_worker_after_setup(sender: str = "", instance: Any = None, **_: Any) -> None:
    if log_format() != "json" or instance is None:
        return
    queues = sorted(getattr(instance.app.amqp.queues, "consume_from", {}) or {})
    logging.getLogger("celery.worker").info(
        "worker %s starting", sender, extra={"hostname": sender, "queues": queues, "pid": os.getpid()}
    )


def on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Celery's worker_ready: with JSON logs, the SIGTERM handler stops printing its text
    line; ``on_worker_shutting_down`` writes it as JSON."""
    worker = getattr(sender, "controller", None)
    if worker is None or log_format() != "json":
        return
    from celery.apps.worker import (  # type: ignore[attr-defined]  # defined conditionally, unseen by celery-types
        install_worker_term_handler,
    )

    install_worker_term_handler(worker, verbose=False)


def on_worker_shutting_down(sender: str = "", sig: str = "", how: str = "", **_: Any) -> None:
    if log_format() == "json":
        logging.getLogger("celery.worker").info(
            "worker %s: %s shutdown on %s", sender, how.lower(), sig, extra={"hostname": sender}
        )


def connect_celery_signals() -> None:
    """Wire the receivers above; called once by ``docuelevate.celery``."""
    from celery import signals

    signals.setup_logging.connect(configure_worker_logging, weak=False, dispatch_uid="ops_logging_setup")
    signals.task_prerun.connect(on_task_prerun, weak=False, dispatch_uid="ops_logging_prerun")
    signals.task_postrun.connect(on_task_postrun, weak=False, dispatch_uid="ops_logging_postrun")
    signals.celeryd_init.connect(on_worker_init, weak=False, dispatch_uid="ops_logging_init")
    signals.celeryd_after_setup.connect(on_worker_after_setup, weak=False, dispatch_uid="ops_logging_after")
    signals.worker_ready.connect(on_worker_ready, weak=False, dispatch_uid="ops_logging_ready")
    signals.worker_shutting_down.connect(
        on_worker_shutting_down, weak=False, dispatch_uid="ops_logging_shutdown"
    )
