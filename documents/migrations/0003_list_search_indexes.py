"""PostgreSQL-only indexes of the document list (documents.selectors.document_list).

- Trigram GIN indexes for ``search=``, which matches ``icontains`` on three columns: the ORM
  writes ``UPPER(column::text) LIKE UPPER('%term%')``, which no B-tree can serve. Each index
  is on ``UPPER(column)``, which PostgreSQL keeps as ``upper((column)::text)``: the very
  expression of the query, else the planner would not use it. A term needs three
  characters to give a trigram; shorter ones are still read through the whole table.
- ``document_date DESC NULLS LAST, id DESC`` for the list by document date, newest first:
  empty dates sort last in both directions, and a backwards scan of ``document_date_order``
  puts them first.

SQLite gets neither: it has no GIN indexes, no pg_trgm and no NULLS LAST in an index (and
there a backwards scan of ``document_date_order`` already puts empty dates last). Model
indexes cannot differ per database, hence this migration instead of Meta.indexes.

pg_trgm ships with PostgreSQL's contrib package (in the official images and on every managed
service, where it is allow-listed). It is a trusted extension, so the database's owner may
create it; where the migration's user may not, an administrator runs ``CREATE EXTENSION
pg_trgm`` once beforehand and ``IF NOT EXISTS`` leaves it be.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# SQL rather than GinIndex(OpClass(...)): OpClass needs django.contrib.postgres installed as
# an app, which an installation on SQLite has no use for.
FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    *(
        f"CREATE INDEX {name} ON documents_document USING GIN (UPPER({column}) gin_trgm_ops)"
        for column, name in [
            ("original_filename", "document_filename_trgm"),
            ("document_title", "document_title_trgm"),
            ("correspondent", "document_correspondent_trgm"),
        ]
    ),
    "CREATE INDEX document_date_desc_order ON documents_document (document_date DESC NULLS LAST, id DESC)",
]
# The extension stays: other objects in the database may have come to use it.
BACKWARD = [
    f"DROP INDEX IF EXISTS {name}"
    for name in [
        "document_filename_trgm",
        "document_title_trgm",
        "document_correspondent_trgm",
        "document_date_desc_order",
    ]
]


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Not TrigramExtension(): reversed, that operation asks pg_extension on any database.
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("documents", "0002_list_order_indexes")]
    operations = [migrations.RunPython(forward, backward)]
