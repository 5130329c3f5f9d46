"""Search entries carry what filters, facets and the order need, so a search reads one
narrow table. Existing entries get these fields from their documents here; their head
vectors and tag lists come with the next reindex, which their cleared fingerprints ask for
(the hourly reconcile, or ``python manage.py reindex`` right away)."""

from __future__ import annotations

import django.contrib.postgres.search
import django.utils.timezone
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce, TruncDate

COPIED_FIELDS = ("owner_id", "document_type", "correspondent", "language", "mime_type", "created_at")
POSTGRESQL_HEAD_INDEX = "CREATE INDEX search_entry_head_gin ON search_searchentry USING GIN (head)"
POSTGRESQL_HEAD_INDEX_DROP = "DROP INDEX IF EXISTS search_entry_head_gin"


def copy_from_documents(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    entry_model = apps.get_model("search", "SearchEntry")
    document_model = apps.get_model("documents", "Document")
    document = document_model.objects.filter(pk=OuterRef("document_id"))
    values = {name: Subquery(document.values(name)[:1]) for name in COPIED_FIELDS}
    day = Coalesce("document_date", TruncDate("created_at"))
    values["date"] = Subquery(document.annotate(day=day).values("day")[:1])
    entry_model.objects.update(**values, fingerprint="")


def create_head_index(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_HEAD_INDEX)


def drop_head_index(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_HEAD_INDEX_DROP)


class Migration(migrations.Migration):
    dependencies = [("search", "0002_full_text_structures"), ("documents", "0003_list_search_indexes")]

    operations = [
        migrations.AddField(
            model_name="searchentry",
            name="owner_id",
            field=models.BigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="searchentry",
            name="document_type",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="searchentry",
            name="correspondent",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AddField(
            model_name="searchentry",
            name="language",
            field=models.CharField(blank=True, default="", max_length=8),
        ),
        migrations.AddField(
            model_name="searchentry",
            name="mime_type",
            field=models.CharField(blank=True, default="", max_length=127),
        ),
        migrations.AddField(model_name="searchentry", name="date", field=models.DateField(null=True)),
        migrations.AddField(
            model_name="searchentry",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.AddField(model_name="searchentry", name="tag_ids", field=models.JSONField(default=list)),
        migrations.AddField(
            model_name="searchentry",
            name="head",
            field=django.contrib.postgres.search.SearchVectorField(null=True),
        ),
        migrations.RunPython(copy_from_documents, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="searchentry",
            index=models.Index(fields=["owner_id", "-created_at"], name="search_entry_owner_recent"),
        ),
        migrations.AddIndex(
            model_name="searchentry",
            index=models.Index(fields=["-created_at", "-document"], name="search_entry_recent"),
        ),
        migrations.AddIndex(
            model_name="searchentry",
            index=models.Index(fields=["document_type"], name="search_entry_type"),
        ),
        migrations.AddIndex(
            model_name="searchentry",
            index=models.Index(fields=["date"], name="search_entry_date"),
        ),
        migrations.RunPython(create_head_index, drop_head_index),
    ]
