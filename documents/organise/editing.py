"""Editing a document's metadata: one service for the page, the API and bulk edits.

An edit is checked against the version it was made on (``Document.version``): a second
person saving over an older reading gets StaleEdit (412), never a silent overwrite. What
changed is recorded field by field (``DocumentChange``, and the audit trail), the fields
become the person's (``user_fields``: reprocessing keeps them), the search entry is
rewritten at once, and a finished document goes through embed_metadata and finalize again,
so its PDF, its sidecar, its stored name and its deliveries follow the edit.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q

from accounts.access import Viewer
from accounts.audit import audit_record
from accounts.models import AuditAction, User
from docuelevate.errors import Forbidden, InvalidInput, NotFound, StaleEdit
from documents.metadata.rules.naming import safe_filename
from documents.models import (
    ChangeOrigin,
    Correspondent,
    CustomField,
    CustomFieldValue,
    Document,
    DocumentChange,
    DocumentStatus,
    DocumentType,
    ResetKind,
    StoragePath,
    Tag,
    TaxonomyEntry,
)
from documents.organise.custom_fields import custom_value_columns, custom_value_shown
from documents.organise.keys import clean_name, match_key
from documents.organise.mapping import entry_for_name
from documents.pipeline.state import steps_reset, steps_reset_many
from documents.services import pipeline_enqueue
from search.services import index_documents_now

# What an edit may change, by the names the API and the history use.
EDITABLE_FIELDS = frozenset(
    {
        "document_title", "document_type", "correspondent", "document_date", "tags", "language",
        "storage_path", "owner", "custom_fields",
    }
)  # fmt: skip
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
# The step an edited, finished document runs again from: the metadata goes into the PDF.
REFILE_FROM_STEP = "embed_metadata"


@dataclass
class _Edit:
    """The changes of one edit, as they are applied: old and new, as a person reads them."""

    document: Document
    actor: User | None
    origin: ChangeOrigin
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)

    def record(self, name: str, old: Any, new: Any) -> None:
        if old != new:
            self.changes.append((name, old, new))


def document_update(
    *,
    viewer: Viewer,
    document_id: int,
    changes: Mapping[str, Any],
    expected_version: int | None = None,
    origin: ChangeOrigin = ChangeOrigin.API,
) -> Document:
    """Apply ``changes`` (a subset of EDITABLE_FIELDS: entries by id, ``custom_fields`` as
    ``{field id: value or None}``) to a document ``viewer`` may see, made on
    ``expected_version`` (None: whatever is stored). Returns the document as saved."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        document = _locked(viewer, document_id)
        if expected_version is not None and document.version != expected_version:
            raise StaleEdit(
                "Someone changed this document after you opened it; reload to see their changes.",
                current_version=document.version,
            )
        actor = viewer.user if isinstance(viewer.user, User) else None
        edit = _Edit(document=document, actor=actor, origin=origin)
        _apply(edit, changes, viewer=viewer)
        if edit.changes:
            _save(edit)
    return document


def _locked(viewer: Viewer, document_id: int) -> Document:
    document = (
        Document.objects.visible_to(viewer)
        .select_for_update(of=("self",))
        .select_related("document_type", "correspondent", "storage_path", "owner")
        .filter(pk=document_id)
        .first()
    )
    if document is None:
        raise NotFound("No such document.")
    return document


def _apply(edit: _Edit, changes: Mapping[str, Any], *, viewer: Viewer) -> None:
    document = edit.document
    if "owner" in changes:
        _apply_owner(edit, changes["owner"], viewer=viewer)
    if "document_title" in changes:
        title = clean_name(str(changes["document_title"] or ""), max_length=255)
        if not title:
            raise InvalidInput("A document needs a title.")
        edit.record("document_title", document.document_title, title)
        document.document_title = title
    if "document_date" in changes:
        day = changes["document_date"]
        if day is not None and not isinstance(day, datetime.date):
            raise InvalidInput("document_date takes a date as YYYY-MM-DD, or null.")
        edit.record("document_date", _iso(document.document_date), _iso(day))
        document.document_date = day
    if "language" in changes:
        language = str(changes["language"] or "").strip().lower()
        if language and not _LANGUAGE.match(language):
            raise InvalidInput("language takes a language code such as en, de or fr.")
        edit.record("language", document.language, language)
        document.language = language
    for name, model in (
        ("document_type", DocumentType),
        ("correspondent", Correspondent),
        ("storage_path", StoragePath),
    ):
        if name in changes:
            entry = _entry(model, changes[name], document=document)
            current = getattr(document, name)
            edit.record(name, current.name if current else None, entry.name if entry else None)
            setattr(document, name, entry)
    if "tags" in changes:
        tags = _tags(changes["tags"], document=document)
        current_names = sorted(tag.name for tag in document.tags.all())
        new_names = sorted(tag.name for tag in tags)
        edit.record("tags", current_names, new_names)
        if current_names != new_names:
            document.tags.set(tags)
    if "custom_fields" in changes:
        _apply_custom_fields(edit, changes["custom_fields"])


def _apply_owner(edit: _Edit, owner_id: Any, *, viewer: Viewer) -> None:
    """Operators give a document to another user; the entries it carries that were the old
    owner's are swapped for the new owner's of the same name (made if need be)."""
    document = edit.document
    if owner_id == document.owner_id:
        return
    if not viewer.operator:
        raise Forbidden("Only operators give a document to another user.")
    owner = User.objects.filter(pk=owner_id, is_active=True).first() if isinstance(owner_id, int) else None
    if owner is None:
        raise InvalidInput("owner takes the id of an active user.")
    edit.record("owner", document.owner.get_username(), owner.get_username())
    old_owner_id = document.owner_id
    document.owner = owner
    for name, model in (
        ("document_type", DocumentType),
        ("correspondent", Correspondent),
        ("storage_path", StoragePath),
    ):
        entry = getattr(document, name)
        if entry is not None and entry.owner_id == old_owner_id:
            setattr(document, name, entry_for_name(model, owner_id=owner.pk, name=entry.name, create=True))
    private = [tag for tag in document.tags.all() if tag.owner_id == old_owner_id]
    if private:
        swapped = [entry_for_name(Tag, owner_id=owner.pk, name=tag.name, create=True) for tag in private]
        document.tags.remove(*private)
        document.tags.add(*[tag for tag in swapped if tag is not None])
    # Values of the old owner's own fields have no field on the new owner's side.
    CustomFieldValue.objects.filter(document=document, field__owner_id=old_owner_id).delete()


def _entry(model: type[TaxonomyEntry], raw: Any, *, document: Document) -> Any:
    """The entry with id (or name) ``raw``, or None for None, if the document's owner may
    use it; by name the owner's own comes before a global one."""
    if raw is None:
        return None
    if isinstance(raw, str) and match_key(raw):
        # The owner's own entry of that name before a global one.
        return entry_for_name(model, owner_id=document.owner_id, name=raw, create=False) or _missing(
            model, raw
        )
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidInput(f"{model._meta.verbose_name} takes an id or a name, or null.")
    entry = _usable(model, document).filter(pk=raw).first()
    return entry or _missing(model, raw)


def _missing(model: type[TaxonomyEntry], raw: Any) -> Any:
    raise InvalidInput(f"No {model._meta.verbose_name} {raw!r} for this document's owner.")


def _usable(model: type[TaxonomyEntry], document: Document) -> Any:
    """The entries a document may refer to: its owner's and the global ones, whoever edits."""
    return model.objects.filter(Q(owner__isnull=True) | Q(owner_id=document.owner_id))


def entries_usable(model: type[TaxonomyEntry], *, document: Document) -> Any:
    """The entries an edit of ``document`` may choose from (what the page's form offers):
    the same rule document_update applies."""
    return _usable(model, document)


def _tags(raw: Any, *, document: Document) -> list[Tag]:
    """Tags by id or by name (the names clients read in ``tags``)."""
    if not isinstance(raw, list | tuple) or any(
        isinstance(i, bool) or not isinstance(i, int | str) for i in raw
    ):
        raise InvalidInput("tags takes a list of tag ids or names.")
    wanted = {item for item in raw if isinstance(item, int)}
    wanted |= {_entry(Tag, item, document=document).pk for item in raw if isinstance(item, str)}
    tags = list(_usable(Tag, document).filter(pk__in=wanted))
    if missing := wanted - {tag.pk for tag in tags}:
        raise InvalidInput(f"No tag {min(missing)} for this document's owner.")
    return tags


def _apply_custom_fields(edit: _Edit, raw: Any) -> None:
    document = edit.document
    if not isinstance(raw, Mapping):
        raise InvalidInput("custom_fields takes an object of field ids and values.")
    try:
        wanted = {int(key): value for key, value in raw.items()}
    except (TypeError, ValueError):
        raise InvalidInput("custom_fields takes an object of field ids and values.") from None
    fields = _usable(CustomField, document).in_bulk(list(wanted))
    if missing := set(wanted) - set(fields):
        raise InvalidInput(f"No custom field {min(missing)} for this document's owner.")
    current = {
        value.field_id: value
        for value in CustomFieldValue.objects.filter(
            document=document, field_id__in=list(wanted)
        ).select_related("field")
    }
    for field_id, value in sorted(wanted.items()):
        custom_field = fields[field_id]
        existing = current.get(field_id)
        old = custom_value_shown(existing) if existing else None
        history_name = f"custom_field:{custom_field.name}"
        if value is None:
            if existing:
                existing.delete()
                edit.record(history_name, old, None)
            continue
        columns = custom_value_columns(custom_field, value, owner_id=document.owner_id)
        stored, _ = CustomFieldValue.objects.update_or_create(
            document=document, field=custom_field, defaults=columns
        )
        stored.field = custom_field
        edit.record(history_name, old, custom_value_shown(stored))


def _save(edit: _Edit) -> None:
    document = edit.document
    changed = [name for name, _, _ in edit.changes]
    kept = {name.split(":", 1)[0] if name.startswith("custom_field:") else name for name in changed}
    document.user_fields = sorted(set(document.user_fields or ()) | (kept - {"owner"}))
    document.version += 1
    if isinstance(document.metadata, dict) and {"document_title", "document_date"} & kept:
        # The stored name follows the title and date (finalize reads it).
        document.metadata = {
            **document.metadata,
            "filename": safe_filename(document.document_date, document.document_title),
        }
    document.save()
    actor_name = edit.actor.get_username() if edit.actor else ""
    DocumentChange.objects.bulk_create(
        DocumentChange(
            document=document, actor=edit.actor, actor_name=actor_name, origin=edit.origin,
            field=name, old=old, new=new,
        )
        for name, old, new in edit.changes
    )  # fmt: skip
    audit_record(
        action=AuditAction.DOCUMENT_CHANGED,
        target=f"document {document.pk} {document.original_filename}"[:255],
        detail={"owner_id": document.owner_id, "fields": changed, "origin": edit.origin},
    )
    _after_edit(document)


def _after_edit(document: Document) -> None:
    documents_after_edit(documents=[document])


def documents_after_edit(*, documents: Sequence[Document]) -> None:
    """What follows an edit, for one document or a bulk edit's chunk: the search entries at
    once (the person looks for what they typed next), then each finished document is filed
    again: its PDF, sidecar, name and deliveries follow the edit."""
    index_documents_now(document_ids=[document.pk for document in documents])
    filed = [d.pk for d in documents if d.status == DocumentStatus.COMPLETED and d.processed_file]
    steps_reset_many(
        document_ids=filed,
        from_step=REFILE_FROM_STEP,
        reason=ResetKind.EDIT,
        log_step_name="edit",
        message="Metadata edited: written into the PDF and filed again",
    )
    for document_id in filed:
        pipeline_enqueue(document_id=document_id, step_name=REFILE_FROM_STEP, task_id=str(uuid.uuid4()))


# Documents one refile task takes: a renamed correspondent or a changed template may concern
# thousands, and a task stays short enough to be retried whole.
REFILE_BATCH_SIZE = 500


def document_refile(*, document_id: int, from_step: str, message: str) -> bool:
    """Run a finished document again from ``from_step`` (``embed_metadata`` when what the
    PDF says changed, ``finalize`` when only its name did), so its file moves to the name
    its fields and template give now; False for a document that is not finished (it is
    filed with the new values when it gets there)."""
    document = Document.objects.filter(pk=document_id).only("status", "processed_file").first()
    if document is None or document.status != DocumentStatus.COMPLETED or not document.processed_file:
        return False
    steps_reset(
        document_id=document_id,
        from_step=from_step,
        reason=ResetKind.EDIT,
        log_step_name="edit",
        message=message,
    )
    pipeline_enqueue(document_id=document_id, step_name=from_step, task_id=str(uuid.uuid4()))
    return True


def documents_refile_enqueue(*, document_ids: Sequence[int], from_step: str, message: str) -> None:
    """Refile many documents in workers once the current transaction has committed (a
    storage path's template changed, a correspondent renamed or merged)."""
    from documents.tasks import documents_refile_task

    ids = list(document_ids)

    def send() -> None:
        for start in range(0, len(ids), REFILE_BATCH_SIZE):
            documents_refile_task.delay(ids[start : start + REFILE_BATCH_SIZE], from_step, message)

    if ids:
        transaction.on_commit(send)


def _iso(day: datetime.date | None) -> str | None:
    return day.isoformat() if day else None


def document_history(*, document: Document) -> list[DocumentChange]:
    """The document's changes, oldest first."""
    return list(DocumentChange.objects.filter(document=document).order_by("at", "pk"))
