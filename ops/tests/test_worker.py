"""A real Celery worker consumes the queues: the embedded file broker, and Redis."""

from __future__ import annotations

import json

import redis

from conftest import run_manage

SEND_PING = "from ops.tasks import ping_task; print(ping_task.delay().id)"
AWAIT_RESULT = (
    "import json, sys; from celery.result import AsyncResult; "
    "print(json.dumps(AsyncResult(sys.argv[-1]).get(timeout=90)))"
)


def send_ping(env):
    sent = run_manage(env, "shell", "-c", SEND_PING)
    assert sent.returncode == 0, sent.stderr
    return sent.stdout.strip().splitlines()[-1]


def await_result(env, task_id):
    # `shell -c` passes no arguments through, so the id travels in the code itself.
    code = AWAIT_RESULT.replace("sys.argv[-1]", repr(task_id))
    done = run_manage(env, "shell", "-c", code)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_embedded_worker_runs_a_task_sent_from_a_django_shell(embedded_env, start_worker):
    task_id = send_ping(embedded_env)
    worker = start_worker(embedded_env)
    answer = await_result(embedded_env, task_id)
    assert answer["pid"] == worker.pid  # the solo pool runs tasks in the worker process itself


def test_worker_consumes_from_redis(process_env, redis_url, start_worker):
    process_env["REDIS_URL"] = redis_url
    client = redis.Redis.from_url(redis_url)
    task_id = send_ping(process_env)
    # The message waits in Redis until a worker takes it: nothing ran in the sender.
    assert client.llen("celery") == 1
    worker = start_worker(process_env)
    answer = await_result(process_env, task_id)
    assert answer["pid"] == worker.pid
    assert client.llen("celery") == 0
