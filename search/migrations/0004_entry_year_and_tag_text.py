"""The years facet counts a year column instead of taking each match's year from its date,
and the tags facet groups the matches by their tag ids as text instead of jsonb: both were
a large part of a broad search's time (bench/search.py). The years of existing entries
come from their dates here; their tag ids keep their values (the text of the JSON list)."""

from __future__ import annotations

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models.functions import ExtractYear


def fill_years(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("search", "SearchEntry").objects.update(year=ExtractYear("date"))


class Migration(migrations.Migration):
    dependencies = [("search", "0003_entry_search_fields")]

    operations = [
        migrations.AddField(model_name="searchentry", name="year", field=models.SmallIntegerField(null=True)),
        migrations.RunPython(fill_years, migrations.RunPython.noop),
        migrations.AlterField(model_name="searchentry", name="tag_ids", field=models.TextField(default="[]")),
    ]
