"""The users of bench/load.py, for locust (``locust -f bench/load_users.py``; load.py starts it).

Each user posts ``LOAD_ROUNDS`` small PDFs of its own (distinct text, so none is a duplicate)
through ``/api/ui-upload`` with the API token ``LOAD_TOKEN``; after each upload it reads the
new document's status (``/api/files/<id>``) and the first page of the files list, then waits
a moment as a script between files would. A user leaves after its last round; when the last
one has left, locust stops. Every answer's time and status, and the ids of the accepted
documents, go to ``LOAD_RESULTS`` (JSON) when locust quits: load.py computes the
percentiles itself, over exactly these requests.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import gevent
from _common import small_pdf
from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.exception import StopUser

TOKEN = os.environ.get("LOAD_TOKEN", "")
ROUNDS = int(os.environ.get("LOAD_ROUNDS", "1"))
PHASE = os.environ.get("LOAD_PHASE", "load")
RESULTS = Path(os.environ.get("LOAD_RESULTS", "load-results.json"))

# Milliseconds and HTTP statuses per request name ("upload", "status", "list"); 0 is a
# request that got no answer at all (refused, reset, timed out).
times: dict[str, list[float]] = defaultdict(list)
statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
accepted: list[int] = []
refused: list[str] = []
finished_users = 0


def _record(name: str, response_time: float, response: Any, exception: Any, **_: Any) -> None:
    code = getattr(response, "status_code", 0) if exception is None or response is not None else 0
    times[name].append(response_time)
    statuses[name][int(code or 0)] += 1


def _write(environment: Environment, **_: Any) -> None:
    RESULTS.write_text(
        json.dumps({"times": times, "statuses": statuses, "accepted": accepted, "refused": refused[:50]})
    )


# Plain calls, not decorators, so the listeners keep their types.
events.request.add_listener(_record)  # type: ignore[no-untyped-call]  # locust's EventHook is untyped
events.quitting.add_listener(_write)  # type: ignore[no-untyped-call]  # the same


class Uploader(HttpUser):
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {TOKEN}"
        self.rounds_done = 0

    @task
    def upload_then_read(self) -> None:
        if self.rounds_done >= ROUNDS:
            self._leave()
        self.rounds_done += 1
        label = f"{PHASE}-{uuid.uuid4().hex}"
        upload = {"file": (f"{label}.pdf", small_pdf(label), "application/pdf")}
        with self.client.post("/api/ui-upload", files=upload, name="upload", catch_response=True) as answer:
            body = answer.json() if answer.status_code == 200 else {}
            if body.get("status") != "queued":
                refused.append(f"{answer.status_code} {answer.text[:200]}")
                answer.failure(f"not queued: {answer.status_code}")
                return
            accepted.append(int(body["document_id"]))
        self.client.get(f"/api/files/{body['document_id']}", name="status")
        self.client.get("/api/files?per_page=25", name="list")

    def _leave(self) -> None:
        global finished_users
        finished_users += 1
        runner = self.environment.runner
        if runner is not None and finished_users >= runner.target_user_count:
            # Not from this greenlet: quitting stops every user, this one included.
            gevent.spawn(runner.quit)
        raise StopUser
