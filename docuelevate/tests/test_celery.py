from __future__ import annotations

from docuelevate.celery import QUEUES, TASK_ROUTES, app
from ops.schedule import periodic_schedule


def test_every_project_task_has_an_explicit_route():
    app.loader.import_default_modules()
    project_tasks = {name for name in app.tasks if not name.startswith("celery.")}
    assert project_tasks, "no tasks were discovered"
    assert project_tasks <= set(TASK_ROUTES), f"unrouted: {sorted(project_tasks - set(TASK_ROUTES))}"


def test_routes_point_only_at_declared_queues():
    declared = {queue.name for queue in app.conf.task_queues}
    assert declared == set(QUEUES) == {"document_processor", "default", "celery"}
    assert set(TASK_ROUTES.values()) <= declared


def test_messages_are_json_only_and_acknowledged_after_the_work():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_always_eager is False
    # django-celery-beat's database scheduler, which also leaves a heartbeat (ops.beat).
    assert app.conf.beat_scheduler == "ops.beat:HeartbeatScheduler"


def test_the_schedule_lives_in_the_database_only_and_names_routed_tasks():
    # DatabaseScheduler would copy a beat_schedule over operators' changes at each start.
    assert app.conf.beat_schedule == {}
    app.loader.import_default_modules()
    for entry in periodic_schedule():
        assert entry.task in app.tasks, entry.name
        assert entry.queue == TASK_ROUTES[entry.task]
