"""Writes of destinations and deliveries, by responsibility:

- ``destinations``: destinations saved, changed, removed, kept in step with the environment;
- ``deliveries``: deliveries scheduled, queued, run, resumed after a worker's death;
- ``placement``: within one run, the remote path, the check before writing, the upload.

Callers import from ``destinations.services``; the modules are how the code is kept small.
"""

from __future__ import annotations

from destinations.services.deliveries import (
    DELIVERY_SOFT_TIME_LIMIT,
    DELIVERY_STALE_GRACE_SECONDS,
    DELIVERY_TIME_LIMIT,
    DeliveryOutcome,
    DeliveryRun,
    deliveries_redeliver,
    deliveries_resend_overdue,
    deliveries_resume_abandoned,
    deliveries_resume_expired,
    deliveries_resume_stale,
    deliveries_run_sync,
    deliveries_schedule,
    delivery_enqueue,
    delivery_run,
)
from destinations.services.destinations import (
    destination_connect,
    destination_create,
    destination_delete,
    destination_owner,
    destination_secrets_merged,
    destination_secrets_renew,
    destination_settings_validate,
    destination_update,
    system_destinations_sync,
)

__all__ = [
    "DELIVERY_SOFT_TIME_LIMIT",
    "DELIVERY_STALE_GRACE_SECONDS",
    "DELIVERY_TIME_LIMIT",
    "DeliveryOutcome",
    "DeliveryRun",
    "deliveries_redeliver",
    "deliveries_resend_overdue",
    "deliveries_resume_abandoned",
    "deliveries_resume_expired",
    "deliveries_resume_stale",
    "deliveries_run_sync",
    "deliveries_schedule",
    "delivery_enqueue",
    "delivery_run",
    "destination_connect",
    "destination_create",
    "destination_delete",
    "destination_owner",
    "destination_secrets_merged",
    "destination_secrets_renew",
    "destination_settings_validate",
    "destination_update",
    "system_destinations_sync",
]
