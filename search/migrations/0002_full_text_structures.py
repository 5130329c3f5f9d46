"""The engine-specific halves of the database search index.

PostgreSQL: a GIN index on the weighted vector. SQLite: an FTS5 table (Porter stemming,
diacritics folded) whose rowid is the document id. Each database gets only its own.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRESQL_FORWARD = "CREATE INDEX search_entry_vector_gin ON search_searchentry USING GIN (vector)"
POSTGRESQL_BACKWARD = "DROP INDEX IF EXISTS search_entry_vector_gin"
SQLITE_FORWARD = (
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "title, filename, names, tags, kind, body, tokenize = 'porter unicode61 remove_diacritics 2')"
)
SQLITE_BACKWARD = "DROP TABLE IF EXISTS search_fts"


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FORWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_BACKWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("search", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
