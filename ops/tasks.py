"""Housekeeping tasks."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import shared_task


@shared_task(name="ops.tasks.ping_task", acks_late=True, ignore_result=False)
def ping_task() -> dict[str, Any]:
    """Answer with the worker's identity.

    A full round trip through broker, worker and result backend: the cheapest proof that
    documents sent to the queue will really be picked up, for health checks and tests.
    """
    return {"hostname": socket.gethostname(), "pid": os.getpid()}
