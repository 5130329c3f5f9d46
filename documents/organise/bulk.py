"""Bulk edits: one change for many documents (ticked ones, or every result of a filter),
done by a worker in chunks, its progress kept in a BulkOperation row the page polls.

The rules are those of one edit (documents.organise.editing): history rows (origin
``bulk``), ``user_fields``, the version raised, the audit trail, the search entries
rewritten and finished documents filed again. They are applied per chunk with a few
queries each, not one ``document_update`` per document: 10,000 documents must go through
in the time a person waits for a progress bar (bench/bulk_edit.py measures it).

Resumable: the selection is resolved to ids when the operation is made, and each chunk's
changes commit together with the progress that counts them, so a task killed mid-chunk
leaves that chunk undone and a redelivered task continues from ``done``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.access import Viewer
from accounts.audit import audit_record
from accounts.models import AuditAction, User
from docuelevate.bounds import MAX_ID
from docuelevate.errors import ApplicationError, Forbidden, InvalidInput, NotFound
from documents.api.serializers import FileListInputSerializer
from documents.models import (
    BulkAction,
    BulkOperation,
    BulkStatus,
    ChangeOrigin,
    Correspondent,
    CustomField,
    CustomFieldValue,
    Document,
    DocumentChange,
    DocumentType,
    StoragePath,
    Tag,
    TaxonomyEntry,
)
from documents.organise.custom_fields import custom_value_columns, custom_value_shown
from documents.organise.editing import document_update, documents_after_edit
from documents.organise.keys import match_key
from documents.organise.trash import documents_trash
from documents.selectors import DocumentFilters, document_list
from documents.services import document_reprocess

logger = logging.getLogger(__name__)

# One operation acts on at most this many documents: beyond it, narrow the filter.
BULK_MAX_DOCUMENTS = 100_000
# Documents per transaction: small enough that a chunk commits in about a second, large
# enough that the per-chunk queries cost little per document.
CHUNK_SIZE = 500
# Refusals kept on the operation; ``failed`` counts them all.
MAX_ERRORS = 100
MAX_TAGS = 100
# SQLite refuses a query with more than 32,766 parameters: ids are looked up in batches.
_ID_BATCH = 10_000
# The actions that set one entry field, with the parameter (and field) they take.
ENTRY_FIELDS: dict[BulkAction, tuple[str, type[TaxonomyEntry]]] = {
    BulkAction.SET_DOCUMENT_TYPE: ("document_type", DocumentType),
    BulkAction.SET_CORRESPONDENT: ("correspondent", Correspondent),
    BulkAction.SET_STORAGE_PATH: ("storage_path", StoragePath),
}
GONE = "No such document any more (deleted, in the trash, or no longer yours)."


# --- Starting ---------------------------------------------------------------------------------


def bulk_edit_start(
    *, viewer: Viewer, selection: Mapping[str, Any], action: str, parameters: Mapping[str, Any]
) -> BulkOperation:
    """Check ``action`` and its ``parameters``, resolve ``selection`` (``{"documents": [ids]}``
    or ``{"query": {files-list filters}}``) to the documents ``viewer`` may see, and hand the
    operation to a worker once it is committed. Ids of documents the viewer may not see are
    left out, as if absent."""
    if not isinstance(viewer.user, User):
        raise Forbidden("Sign in to edit documents.")
    if action not in BulkAction.values:
        raise InvalidInput(f"Unknown action {action!r}; actions are {', '.join(BulkAction.values)}.")
    checked = _checked_parameters(viewer, BulkAction(action), parameters)
    document_ids, asked = _selected_ids(viewer, selection)
    if not document_ids:
        raise InvalidInput("No document of yours is selected.")
    with transaction.atomic():
        operation = BulkOperation.objects.create(
            actor=viewer.user, operator=viewer.operator, action=action, parameters=checked,
            selection=asked, document_ids=document_ids, total=len(document_ids),
        )  # fmt: skip
        bulk_edit_enqueue(operation_id=str(operation.pk))
    return operation


def bulk_edit_enqueue(*, operation_id: str) -> None:
    """Hand the operation to a worker once the current transaction has committed."""
    from documents.tasks import bulk_edit_task

    transaction.on_commit(lambda: bulk_edit_task.delay(operation_id))


def bulk_operation_get(*, viewer: Viewer, operation_id: str) -> BulkOperation:
    """An operation its actor, or an operator, may follow; anyone else's does not exist."""
    found = BulkOperation.objects.filter(pk=operation_id)
    if not viewer.operator:
        found = found.filter(actor_id=viewer.user.pk) if isinstance(viewer.user, User) else found.none()
    operation = found.first()
    if operation is None:
        raise NotFound("No such bulk operation.")
    return operation


def _selected_ids(viewer: Viewer, selection: Mapping[str, Any]) -> tuple[list[int], dict[str, Any]]:
    """The ids, in order, and the selection as it is kept on the operation."""
    has_documents, has_query = "documents" in selection, "query" in selection
    if has_documents == has_query:
        raise InvalidInput("Select documents by their ids (documents) or by a filter (query), not both.")
    if has_documents:
        raw = selection["documents"]
        if not isinstance(raw, list | tuple) or not all(_is_id(item) for item in raw):
            raise InvalidInput("documents takes a list of document ids.")
        if len(raw) > BULK_MAX_DOCUMENTS:
            raise InvalidInput(f"At most {BULK_MAX_DOCUMENTS:,} documents at once.")
        wanted = sorted(set(raw))
        visible = Document.objects.visible_to(viewer)
        ids: list[int] = []
        for start in range(0, len(wanted), _ID_BATCH):
            batch = wanted[start : start + _ID_BATCH]
            ids += visible.filter(pk__in=batch).order_by("pk").values_list("pk", flat=True)
        return ids, {"documents": len(raw)}
    query = selection["query"]
    if not isinstance(query, Mapping):
        raise InvalidInput("query takes the files list's filters as an object.")
    serializer = FileListInputSerializer(data={name: value for name, value in query.items() if value != ""})
    if not serializer.is_valid():
        raise InvalidInput(f"query: {_first_error(serializer.errors)}")
    filters = DocumentFilters.from_query(serializer.validated_data)
    found = (
        document_list(viewer=viewer, filters=filters)
        .prefetch_related(None)
        .select_related(None)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    ids = list(found[: BULK_MAX_DOCUMENTS + 1])
    if len(ids) > BULK_MAX_DOCUMENTS:
        raise InvalidInput(f"The filter matches more than {BULK_MAX_DOCUMENTS:,} documents; narrow it.")
    return ids, {"query": {str(name): str(value) for name, value in query.items()}}


def _first_error(errors: Mapping[str, Any]) -> str:
    name, problems = next(iter(errors.items()))
    return f"{name}: {problems[0] if isinstance(problems, list) and problems else problems}"


def _checked_parameters(viewer: Viewer, action: BulkAction, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``action``, with entries resolved to ids the viewer may use."""
    if not isinstance(parameters, Mapping):
        raise InvalidInput("parameters takes an object.")
    if action in (BulkAction.ADD_TAGS, BulkAction.REMOVE_TAGS):
        raw = parameters.get("tags")
        if not isinstance(raw, list | tuple) or not raw or len(raw) > MAX_TAGS:
            raise InvalidInput(f"tags takes a list of 1 to {MAX_TAGS} tag ids or names.")
        return {"tags": sorted({_entry_id(viewer, Tag, item, "tag") for item in raw})}
    if action in ENTRY_FIELDS:
        name, model = ENTRY_FIELDS[action]
        if name not in parameters:
            raise InvalidInput(f"{action} takes {name}: an id, a name or null.")
        raw = parameters[name]
        return {name: None if raw is None else _entry_id(viewer, model, raw, name)}
    if action == BulkAction.SET_CUSTOM_FIELD:
        if "value" not in parameters:
            raise InvalidInput("set_custom_field takes field (an id) and value (null removes it).")
        field_id = _entry_id(viewer, CustomField, parameters.get("field"), "field")
        custom_field = CustomField.objects.get(pk=field_id)
        value = parameters["value"]
        if value is not None:
            # Checked once here, so a wrong value is refused before anything runs.
            custom_value_columns(custom_field, value, owner_id=int(viewer.user.pk or 0))
        return {"field": field_id, "value": value}
    if action == BulkAction.SET_OWNER:
        if not viewer.operator:
            raise Forbidden("Only operators give documents to another user.")
        owner_id: Any = parameters.get("owner")
        if not _is_id(owner_id) or not User.objects.filter(pk=owner_id, is_active=True).exists():
            raise InvalidInput("owner takes the id of an active user.")
        return {"owner": owner_id}
    if action == BulkAction.REPROCESS:
        return {"force_ocr": parameters.get("force_ocr") is True}
    return {}


def _is_id(raw: Any) -> bool:
    """An int the database can hold as an id (a bool is not one)."""
    return type(raw) is int and 0 < raw <= MAX_ID


def _entry_id(viewer: Viewer, model: type[TaxonomyEntry], raw: Any, what: str) -> int:
    """The id of the entry ``raw`` (an id, or a name: the viewer's own before a global one)."""
    available = model.objects.available_to(viewer)
    if isinstance(raw, str) and match_key(raw):
        named = list(available.filter(match_key=match_key(raw)))
        named.sort(key=lambda entry: entry.owner_id != viewer.user.pk)
        if named:
            return int(named[0].pk)
    elif _is_id(raw) and available.filter(pk=raw).exists():
        return int(raw)
    raise InvalidInput(f"No {model._meta.verbose_name} {raw!r} of yours for {what}.")


# --- Running ----------------------------------------------------------------------------------


def bulk_edit_run(*, operation_id: str) -> BulkOperation | None:
    """Work through the operation from ``done`` to the end, chunk by chunk; None when it is
    gone. A finished operation is left as it is, so a message delivered twice does nothing."""
    operation = BulkOperation.objects.filter(pk=operation_id).first()
    if operation is None or operation.status in (BulkStatus.DONE, BulkStatus.FAILED):
        return operation
    if operation.actor is None or not operation.actor.is_active:
        return _finish(operation, BulkStatus.FAILED, "The account that asked for it is gone.")
    viewer = Viewer(user=operation.actor, operator=operation.operator)
    BulkOperation.objects.filter(pk=operation.pk).update(status=BulkStatus.RUNNING)
    try:
        while operation.done < operation.total:
            operation = _run_next_chunk(viewer, operation)
    except ApplicationError as error:  # the operation's own input no longer holds
        return _finish(operation, BulkStatus.FAILED, error.message)
    except DatabaseError:
        raise  # the task tries again with backoff, from ``done``
    except Exception:
        # A bug: said on the operation (else it would show "running" for ever), then raised
        # for the server log.
        logger.exception("bulk operation %s stopped", operation_id)
        _finish(operation, BulkStatus.FAILED, "An internal error stopped it; the server log has the details.")
        raise
    return _finish(operation, BulkStatus.DONE, "")


def _finish(operation: BulkOperation, status: BulkStatus, detail: str) -> BulkOperation:
    operation.status = status
    operation.detail = detail
    operation.finished_at = timezone.now()
    operation.save(update_fields=["status", "detail", "finished_at"])
    return operation


def _run_next_chunk(viewer: Viewer, operation: BulkOperation) -> BulkOperation:
    with transaction.atomic():
        # Locked, so two deliveries of one operation cannot do the same chunk; the one that
        # waited sees the other's progress and goes on from there.
        locked = BulkOperation.objects.select_for_update().get(pk=operation.pk)
        ids = locked.document_ids[locked.done : locked.done + CHUNK_SIZE]
        documents = list(
            Document.objects.visible_to(viewer)
            .select_for_update(of=("self",))
            .select_related("document_type", "correspondent", "storage_path")
            .filter(pk__in=ids)
            .order_by("pk")
        )
        errors = [{"document_id": pk, "detail": GONE} for pk in sorted(set(ids) - {d.pk for d in documents})]
        chunk = _Chunk(viewer=viewer, operation=locked, documents=documents)
        HANDLERS[BulkAction(locked.action)](chunk)
        errors += chunk.errors
        locked.done += len(ids)
        locked.failed += len(errors)
        locked.errors = (locked.errors + sorted(errors, key=lambda e: e["document_id"]))[:MAX_ERRORS]
        locked.save(update_fields=["done", "failed", "errors"])
    return locked


@dataclass
class _Chunk:
    """One chunk's documents (locked) and what became of them."""

    viewer: Viewer
    operation: BulkOperation
    documents: list[Document]
    errors: list[dict[str, Any]] = field(default_factory=list)
    # (document, history field, old, new) as a person reads them
    changes: list[tuple[Document, str, Any, Any]] = field(default_factory=list)

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.operation.parameters)

    def refuse(self, document: Document, detail: str) -> None:
        self.errors.append({"document_id": document.pk, "detail": detail})


def _usable_by(entry: TaxonomyEntry, document: Document) -> bool:
    """An entry a document may carry: global, or its owner's (editing._usable's rule)."""
    return entry.owner_id is None or entry.owner_id == document.owner_id


def _tags_changed(chunk: _Chunk, *, add: bool) -> None:
    tags = list(Tag.objects.filter(pk__in=chunk.parameters["tags"]))
    if len(tags) != len(chunk.parameters["tags"]):
        raise InvalidInput("A tag of this operation was deleted meanwhile.")
    ids = [document.pk for document in chunk.documents]
    through = Document.tags.through
    carried: dict[int, set[int]] = defaultdict(set)
    rows = through.objects.filter(document_id__in=ids).values_list("document_id", "tag_id")
    for document_id, tag_id in rows:
        carried[document_id].add(tag_id)
    names = dict(
        Tag.objects.filter(
            pk__in={t for held in carried.values() for t in held} | {t.pk for t in tags}
        ).values_list("pk", "name")
    )
    wanted = {tag.pk for tag in tags}
    added: list[Any] = []
    removed: list[int] = []
    for document in chunk.documents:
        current = carried[document.pk]
        if add:
            foreign = [tag.name for tag in tags if not _usable_by(tag, document)]
            if foreign:
                chunk.refuse(document, f"The tag {foreign[0]!r} belongs to another user.")
                continue
            new = current | wanted
            added += [through(document_id=document.pk, tag_id=tag_id) for tag_id in sorted(new - current)]
        else:
            new = current - wanted
            if new != current:
                removed.append(document.pk)
        if new != current:
            chunk.changes.append(
                (document, "tags", sorted(names[t] for t in current), sorted(names[t] for t in new))
            )
    if added:
        through.objects.bulk_create(added, batch_size=1000, ignore_conflicts=True)
    if removed:
        through.objects.filter(document_id__in=removed, tag_id__in=wanted).delete()
    _record(chunk)


def _entry_set(chunk: _Chunk) -> None:
    name, model = ENTRY_FIELDS[BulkAction(chunk.operation.action)]
    entry_id = chunk.parameters[name]
    entry = model.objects.filter(pk=entry_id).first() if entry_id is not None else None
    if entry_id is not None and entry is None:
        raise InvalidInput(f"The {model._meta.verbose_name} of this operation was deleted meanwhile.")
    changed: list[int] = []
    for document in chunk.documents:
        if entry is not None and not _usable_by(entry, document):
            chunk.refuse(document, f"The {model._meta.verbose_name} {entry.name!r} belongs to another user.")
            continue
        current = getattr(document, name)
        if (current.pk if current else None) == entry_id:
            continue
        old, new = (current.name if current else None), (entry.name if entry else None)
        chunk.changes.append((document, name, old, new))
        setattr(document, name, entry)
        changed.append(document.pk)
    if changed:
        Document.objects.filter(pk__in=changed).update(**{f"{name}_id": entry_id})
    _record(chunk)


def _custom_field_set(chunk: _Chunk) -> None:
    custom_field = CustomField.objects.filter(pk=chunk.parameters["field"]).first()
    if custom_field is None:
        raise InvalidInput("The custom field of this operation was deleted meanwhile.")
    value = chunk.parameters["value"]
    history_name = f"custom_field:{custom_field.name}"
    existing = {
        stored.document_id: stored
        for stored in CustomFieldValue.objects.filter(
            field=custom_field, document_id__in=[document.pk for document in chunk.documents]
        )
    }
    # A value's columns depend on the owner only (a document link stays within an owner's).
    columns_by_owner: dict[int, dict[str, Any] | str] = {}
    replaced: list[int] = []
    created: list[CustomFieldValue] = []
    for document in chunk.documents:
        if not _usable_by(custom_field, document):
            chunk.refuse(document, f"The custom field {custom_field.name!r} belongs to another user.")
            continue
        old_value = existing.get(document.pk)
        if old_value is not None:
            old_value.field = custom_field
        old = custom_value_shown(old_value) if old_value is not None else None
        if value is None:
            if old_value is not None:
                replaced.append(document.pk)
                chunk.changes.append((document, history_name, old, None))
            continue
        if document.owner_id not in columns_by_owner:
            try:
                columns_by_owner[document.owner_id] = custom_value_columns(
                    custom_field, value, owner_id=document.owner_id
                )
            except InvalidInput as error:
                columns_by_owner[document.owner_id] = error.message
        columns = columns_by_owner[document.owner_id]
        if isinstance(columns, str):
            chunk.refuse(document, columns)
            continue
        stored = CustomFieldValue(document=document, field=custom_field, **columns)
        new = custom_value_shown(stored)
        if old_value is not None and old == new:
            continue
        if old_value is not None:
            replaced.append(document.pk)
        created.append(stored)
        chunk.changes.append((document, history_name, old, new))
    if replaced:
        CustomFieldValue.objects.filter(field=custom_field, document_id__in=replaced).delete()
    if created:
        CustomFieldValue.objects.bulk_create(created, batch_size=1000)
    _record(chunk)


def _owner_set(chunk: _Chunk) -> None:
    """Rare and heavy (entries are swapped for the new owner's): one edit per document."""
    for document in chunk.documents:
        try:
            document_update(
                viewer=chunk.viewer, document_id=document.pk,
                changes={"owner": chunk.parameters["owner"]}, origin=ChangeOrigin.BULK,
            )  # fmt: skip
        except ApplicationError as error:
            chunk.refuse(document, error.message)


def _reprocess(chunk: _Chunk) -> None:
    for document in chunk.documents:
        try:
            document_reprocess(document=document, force_ocr=chunk.parameters.get("force_ocr") is True)
        except ApplicationError as error:
            chunk.refuse(document, error.message)


def _trash(chunk: _Chunk) -> None:
    for document_id, detail in documents_trash(documents=chunk.documents, actor=chunk.operation.actor):
        chunk.errors.append({"document_id": document_id, "detail": detail})


def _record(chunk: _Chunk) -> None:
    """What one edit's save does (editing._save), for the chunk's changed documents at once:
    history, user_fields, version, audit, search and filing again."""
    if not chunk.changes:
        return
    actor = chunk.operation.actor
    actor_name = actor.get_username() if actor else ""
    DocumentChange.objects.bulk_create(
        (
            DocumentChange(
                document=document, actor=actor, actor_name=actor_name, origin=ChangeOrigin.BULK,
                field=name, old=old, new=new,
            )
            for document, name, old, new in chunk.changes
        ),
        batch_size=1000,
    )  # fmt: skip
    documents = list({document.pk: document for document, _, _, _ in chunk.changes}.values())
    fields = sorted({name for _, name, _, _ in chunk.changes})
    kept = {name.split(":", 1)[0] if name.startswith("custom_field:") else name for name in fields}
    # One UPDATE per distinct list of user fields (nearly always one): each document's
    # list grows by the same names.
    by_user_fields: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for document in documents:
        document.user_fields = sorted(set(document.user_fields or ()) | kept)
        by_user_fields[tuple(document.user_fields)].append(document.pk)
    now = timezone.now()
    for user_fields, ids in by_user_fields.items():
        Document.objects.filter(pk__in=ids).update(
            user_fields=list(user_fields), version=F("version") + 1, updated_at=now
        )
    # One audit entry per chunk, naming its documents: the trail stays readable after a
    # bulk edit of thousands, and each document's own history has the details.
    audit_record(
        action=AuditAction.DOCUMENT_CHANGED,
        actor=actor,
        target=f"bulk operation {chunk.operation.pk}",
        detail={
            "document_ids": [document.pk for document in documents],
            "fields": fields,
            "origin": ChangeOrigin.BULK,
        },
    )
    documents_after_edit(documents=documents)


HANDLERS: dict[BulkAction, Callable[[_Chunk], None]] = {
    BulkAction.ADD_TAGS: lambda chunk: _tags_changed(chunk, add=True),
    BulkAction.REMOVE_TAGS: lambda chunk: _tags_changed(chunk, add=False),
    BulkAction.SET_DOCUMENT_TYPE: _entry_set,
    BulkAction.SET_CORRESPONDENT: _entry_set,
    BulkAction.SET_STORAGE_PATH: _entry_set,
    BulkAction.SET_CUSTOM_FIELD: _custom_field_set,
    BulkAction.SET_OWNER: _owner_set,
    BulkAction.REPROCESS: _reprocess,
    BulkAction.TRASH: _trash,
}
