"""The Celery application ``docuelevate``: queues and the routing table.

Every task is routed explicitly to one of three queues, so operators can give CPU-heavy
document work its own workers: ``document_processor`` (convert, OCR, metadata, PDF work),
``default`` (indexing, deliveries, ingestion polls, backups) and ``celery`` (housekeeping).
Broker, serializer and acknowledgement settings come from ``settings.CELERY_*``.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

from ops import logging as ops_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docuelevate.settings")

QUEUE_DOCUMENT_PROCESSOR = "document_processor"
QUEUE_DEFAULT = "default"
QUEUE_HOUSEKEEPING = "celery"
QUEUES = (QUEUE_DOCUMENT_PROCESSOR, QUEUE_DEFAULT, QUEUE_HOUSEKEEPING)

# Task name -> queue. A task missing here is a bug that a test catches.
TASK_ROUTES: dict[str, str] = {
    "documents.tasks.pipeline_step_task": QUEUE_DOCUMENT_PROCESSOR,
    "documents.tasks.document_fetch_url_task": QUEUE_DEFAULT,
    "documents.tasks.stuck_steps_watchdog_task": QUEUE_HOUSEKEEPING,
    "documents.tasks.trash_empty_task": QUEUE_HOUSEKEEPING,
    "documents.tasks.bulk_edit_task": QUEUE_DEFAULT,
    "documents.tasks.documents_refile_task": QUEUE_DEFAULT,
    "documents.tasks.matchers_retrain_due_task": QUEUE_HOUSEKEEPING,
    "documents.tasks.matcher_train_owner_task": QUEUE_HOUSEKEEPING,
    "ops.tasks.ping_task": QUEUE_HOUSEKEEPING,
    "ops.tasks.heartbeat_push_task": QUEUE_HOUSEKEEPING,
    "ops.tasks.scratch_sweep_task": QUEUE_HOUSEKEEPING,
    "ops.tasks.logs_prune_task": QUEUE_HOUSEKEEPING,
    "ops.tasks.failed_documents_retry_task": QUEUE_HOUSEKEEPING,
    "ops.tasks.backup_task": QUEUE_DEFAULT,
    "destinations.tasks.delivery_run_task": QUEUE_DEFAULT,
    "destinations.tasks.destinations_check_credentials_task": QUEUE_DEFAULT,
    "sources.tasks.source_poll_task": QUEUE_DEFAULT,
    "sources.tasks.sources_poll_due_task": QUEUE_DEFAULT,
    "search.tasks.search_index_document_task": QUEUE_DEFAULT,
    "search.tasks.search_index_documents_task": QUEUE_DEFAULT,
    "search.tasks.search_remove_document_task": QUEUE_DEFAULT,
    "search.tasks.search_reconcile_task": QUEUE_HOUSEKEEPING,
}

# The beat schedule lives in the database (django-celery-beat), written from ops/schedule.py
# by `manage.py setup_periodic_tasks`; there is deliberately no app.conf.beat_schedule, which
# DatabaseScheduler would copy over operators' changes at every start.

app = Celery("docuelevate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name, routing_key=name) for name in QUEUES]
app.conf.task_default_queue = QUEUE_DEFAULT
# Sending to a queue nobody declared would strand the message; fail loudly instead.
app.conf.task_create_missing_queues = False
app.conf.task_routes = {name: {"queue": queue} for name, queue in TASK_ROUTES.items()}
app.autodiscover_tasks()

# Workers log like the web processes: the project's LOGGING (LOG_FORMAT, secret masking),
# with each task's lines carrying its task id and document id (ops.logging).
ops_logging.connect_celery_signals()
