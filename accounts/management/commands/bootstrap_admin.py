"""``manage.py bootstrap_admin``: make sure an operator can log in.

Runs after ``migrate`` in every deploy. With ADMIN_USERNAME and ADMIN_PASSWORD set it
creates or updates that superuser. ``--generate-if-missing`` (used by ``make run``) gives
a fresh embedded installation an ``admin`` account with a random password and prints it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import admin_bootstrap, admin_generate_initial
from docuelevate.errors import ApplicationError

CREDENTIALS_FILE_NAME = "initial-admin-password"


class Command(BaseCommand):
    help = "Create or update the operator superuser from ADMIN_USERNAME/ADMIN_PASSWORD."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--generate-if-missing",
            action="store_true",
            help="Without ADMIN_* settings, create 'admin' with a random password once.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = settings.ADMIN_USERNAME
        password = settings.ADMIN_PASSWORD
        if username or password:
            if not (username and password):
                raise CommandError("Set both ADMIN_USERNAME and ADMIN_PASSWORD, or neither.")
            try:
                login = admin_bootstrap(username=username, password=password, email=settings.ADMIN_EMAIL)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            verb = "Created" if login.created else "Updated"
            self.stdout.write(f"{verb} operator {login.username!r}; log in with ADMIN_PASSWORD.")
            return
        if not options["generate_if_missing"]:
            self.stdout.write("ADMIN_USERNAME/ADMIN_PASSWORD not set; no operator account changed.")
            return
        generated = admin_generate_initial(credentials_file=settings.WORKDIR / CREDENTIALS_FILE_NAME)
        if generated is None:
            self.stdout.write("Log in with your existing operator account.")
        else:
            self.stdout.write(f"Log in as {generated.username!r} with password {generated.password!r}.")
