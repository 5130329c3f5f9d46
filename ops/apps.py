from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


def _deploy_checks(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    # Imported on use: the checklist pulls in the Redis, Meilisearch and Celery clients,
    # which only `check --deploy` needs, not every process at start-up.
    from ops.checks import deploy_system_checks

    return deploy_system_checks(app_configs, **kwargs)


class OperationsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # deploy=True: only `manage.py check --deploy` runs them, never an ordinary start.
        checks.register(_deploy_checks, checks.Tags.security, "production", deploy=True)
