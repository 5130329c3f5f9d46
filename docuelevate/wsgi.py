"""WSGI entry point for gunicorn: ``gunicorn docuelevate.wsgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docuelevate.settings")

from docuelevate.bodylimit import BodyLimitMiddleware  # after the line above: it reads the settings

# Outside Django, because only here can a chunked body be counted before Django reads it.
application = BodyLimitMiddleware(get_wsgi_application())
