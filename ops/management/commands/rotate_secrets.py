"""``manage.py rotate_secrets``: seal every stored credential again under the current SESSION_SECRET.

Run after a rotation (new SESSION_SECRET, the old one as SESSION_SECRET_PREVIOUS); once it
reports nothing unreadable, SESSION_SECRET_PREVIOUS can go. Every model field of the
encrypted type is found by itself (``EncryptedJSONField``), so credentials a new app keeps
are rotated without a change here. Idempotent: a second run finds everything current.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db import models, transaction

from docuelevate.encryption import EncryptedJSONField, SecretsUnreadable, SecretValues, reseal


@dataclass
class FieldReport:
    field: str  # "app_label.Model.field"
    resealed: int = 0
    current: int = 0
    empty: int = 0
    unreadable: int = 0


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedJSONField]]:
    """Every (model, field) that keeps sealed secrets, in every installed app."""
    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedJSONField)
    ]


def rotate_field(model: type[models.Model], field: EncryptedJSONField) -> FieldReport:
    """Re-seal one field in every row; a row changed meanwhile is left to the next run."""
    report = FieldReport(field=f"{model._meta.label}.{field.name}")
    rows = model._base_manager.values_list("pk", field.attname).order_by("pk")
    for pk, secrets in rows.iterator(chunk_size=500):
        token = secrets.token if isinstance(secrets, SecretValues) else None
        if not token:
            report.empty += 1
            continue
        try:
            fresh = reseal(token)
        except SecretsUnreadable:
            report.unreadable += 1
            continue
        if fresh is None:
            report.current += 1
            continue
        with transaction.atomic():
            # Only where the row still holds the token read: an edit meanwhile sealed anew.
            model._base_manager.filter(pk=pk, **{field.attname: SecretValues(token=token)}).update(
                **{field.attname: SecretValues(token=fresh)}
            )
        report.resealed += 1
    return report


class Command(BaseCommand):
    help = "Re-encrypt every stored credential under the current SESSION_SECRET."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        reports = [rotate_field(model, field) for model, field in encrypted_fields()]
        if options["json"]:
            self.stdout.write(json.dumps({"fields": [asdict(report) for report in reports]}))
        else:
            for report in reports:
                self.stdout.write(
                    f"{report.field}: {report.resealed} re-encrypted, {report.current} already current, "
                    f"{report.empty} empty, {report.unreadable} unreadable"
                )
        unreadable = sum(report.unreadable for report in reports)
        if unreadable:
            self.stderr.write(
                f"{unreadable} stored credential(s) open with neither SESSION_SECRET nor "
                "SESSION_SECRET_PREVIOUS: set the secret they were saved under as SESSION_SECRET_PREVIOUS "
                "and run again, or enter those credentials again."
            )
            raise SystemExit(1)
