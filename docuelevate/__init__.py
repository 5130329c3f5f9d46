"""DocuElevate: wiring of the Django project (settings, Celery, URLs, WSGI)."""

from __future__ import annotations

__version__ = "0.1.0"

# Importing the Celery app here makes @shared_task bind to it in every process.
from docuelevate.celery import app as celery_app

__all__ = ["__version__", "celery_app"]
