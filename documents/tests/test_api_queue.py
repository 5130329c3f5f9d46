"""GET /api/queue/stats: operators only; never fails because the broker or workers are away."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.services import token_create
from docuelevate.celery import app
from documents.models import Document, DocumentStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded_broker(settings) -> None:
    settings.CELERY_BROKER_URL = "filesystem://"


@pytest.fixture
def pings(monkeypatch):
    """Replace the broadcast ping with a given answer (or failure)."""

    def answer(result) -> None:
        def ping(timeout: float = 1.0):
            if isinstance(result, Exception):
                raise result
            return result

        monkeypatch.setattr(app.control, "ping", ping)

    return answer


def stats_as(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client.get("/api/queue/stats")


def test_an_operator_sees_queues_workers_and_documents_by_status(
    operator, ingest, samples, embedded_broker, pings
):
    ingest(samples / "blank.pdf")
    ingest(samples / "blank.pdf", "again.pdf")
    ingest(samples / "scan.png")
    pings([{"worker1@host": {"ok": "pong"}}, {"worker2@host": {"ok": "pong"}}])

    response = stats_as(operator)

    assert response.status_code == 200
    assert response.json() == {
        # The embedded broker cannot be counted; null says "unknown", not "empty".
        "queues": {"document_processor": None, "default": None, "celery": None},
        "workers_online": 2,
        "documents_by_status": {"pending": 2, "processing": 0, "completed": 0, "failed": 0, "duplicate": 1},
    }
    assert Document.objects.filter(status=DocumentStatus.DUPLICATE).count() == 1


def test_workers_that_cannot_be_asked_count_as_none_online_instead_of_an_error(
    operator, embedded_broker, pings
):
    pings(ConnectionError("broker down"))

    response = stats_as(operator)

    assert response.status_code == 200
    assert response.json()["workers_online"] == 0


def test_the_real_ping_on_the_embedded_broker_answers_without_raising(operator, embedded_broker):
    response = stats_as(operator)

    assert response.status_code == 200
    assert isinstance(response.json()["workers_online"], int)


def test_with_a_redis_broker_the_queue_lengths_are_counted(operator, redis_url, settings, pings):
    import redis

    settings.CELERY_BROKER_URL = redis_url
    client = redis.Redis.from_url(redis_url)
    client.lpush("document_processor", "a", "b", "c")
    client.lpush("celery", "d")
    pings([])

    queues = stats_as(operator).json()["queues"]

    assert queues == {"document_processor": 3, "default": 0, "celery": 1}


def test_an_unreachable_redis_broker_gives_unknown_lengths_not_an_error(operator, settings, pings):
    # Port 1 on the loopback: nothing listens there, the connection is refused at once.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    pings([])

    response = stats_as(operator)

    assert response.status_code == 200
    assert response.json()["queues"] == {"document_processor": None, "default": None, "celery": None}


@pytest.mark.parametrize("persona", ["owner", "other_user"])
def test_users_who_are_not_operators_are_refused_with_a_json_403(request, persona, embedded_broker):
    response = stats_as(request.getfixturevalue(persona))

    assert response.status_code == 403
    assert "detail" in response.json()


def test_an_anonymous_caller_is_refused_with_json(embedded_broker):
    response = stats_as(None)

    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_an_operators_everyday_token_does_not_open_the_operator_route(operator, embedded_broker, pings):
    pings([])
    _, everyday = token_create(user=operator, name="phone")
    _, scoped = token_create(user=operator, name="monitoring", operator_scope=True)
    client = APIClient()

    client.credentials(HTTP_AUTHORIZATION=f"Bearer {everyday}")
    assert client.get("/api/queue/stats").status_code == 403
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {scoped}")
    assert client.get("/api/queue/stats").status_code == 200
