"""The Uptime Kuma heartbeat against a local HTTP server that answers as Uptime Kuma's push
route does (``GET /api/push/<token>?status=&msg=&ping=``) and records what it received."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.utils import timezone

from conftest import current_database_url, run_manage
from ops.heartbeat import Heartbeat, push_url
from ops.models import BackupRecord, BackupStatus, BackupTier
from ops.tasks import heartbeat_push_task

TOKEN = "Zq7pushTokenOfTheMonitor"

# Waits for a worker to answer (as the monitor's first push after a deploy would), then pushes.
PUSH_ONCE = """
import time
from ops.probes.broker import workers_online
from ops.heartbeat import heartbeat_push
deadline = time.monotonic() + WAIT
while WAIT and workers_online() == 0 and time.monotonic() < deadline:
    time.sleep(0.5)
print("result:", heartbeat_push())
"""


@dataclass
class FakeKuma:
    url: str
    status: int = 200
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def push_url(self) -> str:
        # As Uptime Kuma shows it, for the operator to paste into UPTIME_KUMA_URL.
        return f"{self.url}/api/push/{TOKEN}?status=up&msg=OK&ping="


@pytest.fixture
def kuma() -> Iterator[FakeKuma]:
    fake = FakeKuma(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            fake.received.append((parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))))
            body = (
                b'{"ok":true}'
                if fake.status == 200
                else b'{"ok":false,"msg":"Monitor not found or not active."}'
            )
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval keeps shutdown (and so every test) quick.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def push_in_subprocess(env: dict[str, str], *, wait_for_worker: int = 0) -> tuple[str, str]:
    """Run one heartbeat in a fresh process configured by ``env``; its result and full output."""
    env["LOG_LEVEL"] = "DEBUG"  # everything any library logs, through the production handlers
    done = run_manage(env, "shell", "-c", PUSH_ONCE.replace("WAIT", str(wait_for_worker)))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    result = next(line for line in done.stdout.splitlines() if line.startswith("result: "))
    return result.removeprefix("result: "), output


def test_a_healthy_installation_pushes_up_with_ok_and_the_database_round_trip(
    kuma, transactional_db, process_env, start_worker
):
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "MEILISEARCH_URL"):
        process_env.pop(name, None)
    process_env.update(DATABASE_URL=current_database_url(), UPTIME_KUMA_URL=kuma.push_url)
    BackupRecord.objects.create(
        tier=BackupTier.HOURLY, status=BackupStatus.SUCCEEDED, finished_at=timezone.now()
    )
    start_worker(process_env)

    result, output = push_in_subprocess(process_env, wait_for_worker=60)

    assert result == "up", output
    assert len(kuma.received) == 1
    path, query = kuma.received[0]
    assert path == f"/api/push/{TOKEN}"
    assert (query["status"], query["msg"]) == ("up", "OK")
    assert float(query["ping"]) >= 0
    assert TOKEN not in output


def test_a_database_that_does_not_answer_pushes_down_and_no_log_line_holds_the_token(kuma, process_env):
    process_env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{closed_port()}/docuelevate"
    process_env["UPTIME_KUMA_URL"] = kuma.push_url

    result, output = push_in_subprocess(process_env)

    assert result == "down"
    [(path, query)] = kuma.received
    assert path == f"/api/push/{TOKEN}"
    assert query["status"] == "down"
    assert query["msg"].startswith("unhealthy: ")
    assert "database" in query["msg"]
    assert query["ping"] == ""  # no round trip to report
    assert "pushed 'down' to Uptime Kuma" in output  # the log was captured, and it is clean:
    assert TOKEN not in output


@pytest.mark.django_db
def test_a_push_the_monitor_refuses_or_cannot_reach_is_logged_without_the_token(kuma, settings, caplog):
    caplog.set_level(logging.DEBUG, logger="ops")
    kuma.status = 404
    settings.UPTIME_KUMA_URL = kuma.push_url

    assert heartbeat_push_task() == "failed"
    assert "Uptime Kuma refused the push with HTTP 404" in caplog.text

    settings.UPTIME_KUMA_URL = f"http://127.0.0.1:{closed_port()}/api/push/{TOKEN}?status=up&msg=OK&ping="
    assert heartbeat_push_task() == "failed"
    assert "Uptime Kuma push failed (ConnectionError)" in caplog.text

    assert len(kuma.received) == 1
    assert TOKEN not in caplog.text


@pytest.mark.django_db
def test_without_uptime_kuma_url_nothing_is_pushed(kuma, settings):
    settings.UPTIME_KUMA_URL = None

    assert heartbeat_push_task() == "not_configured"
    assert kuma.received == []


def test_the_pasted_push_url_gets_its_parameters_replaced_and_keeps_any_other():
    pasted = f"https://kuma.example.org/api/push/{TOKEN}?status=up&msg=OK&ping=&keep=1"

    url = push_url(pasted, Heartbeat("down", "unhealthy: database"))

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "kuma.example.org", f"/api/push/{TOKEN}")
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("keep", "1"),
        ("status", "down"),
        ("msg", "unhealthy: database"),
        ("ping", ""),
    ]
    assert dict(parse_qsl(urlsplit(push_url(pasted, Heartbeat("up", "OK", 1.5))).query))["ping"] == "1.5"
