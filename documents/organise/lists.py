"""The managed lists: tags, document types, correspondents, storage paths, custom fields.

Who may do what: everyone uses their own entries and the global ones; a user creates,
renames, merges and deletes their own; operators (operator rights on the request) also
the global ones (``global_entry=True`` on create). Another user's entries are never seen:
NotFound, as for documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet

from accounts.access import Viewer
from accounts.models import User
from docuelevate.errors import Conflict, Forbidden, InvalidInput, NotFound
from documents.models import (
    ChangeOrigin,
    Correspondent,
    CustomField,
    CustomFieldType,
    Document,
    DocumentChange,
    DocumentType,
    StoragePath,
    Tag,
    TaxonomyEntry,
)
from documents.organise.editing import REFILE_FROM_STEP, documents_refile_enqueue
from documents.organise.keys import clean_name, match_key
from documents.visibility import visibility_for
from search.services import index_documents_enqueue

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_OPTIONS = 200
MAX_TAG_DEPTH = 8  # nested tags deeper than this are a mistake, not a filing scheme


@dataclass(frozen=True)
class EntryKind:
    """One managed list: its model, and how a document refers to its entries."""

    slug: str  # in routes: /api/<slug>
    model: type[TaxonomyEntry]
    document_field: str | None  # the document's field for the entry; None: custom fields
    many: bool = False  # a document carries several (tags)
    label: str = ""

    @property
    def history_field(self) -> str:
        return self.document_field or self.slug


KINDS = {
    kind.slug: kind
    for kind in (
        EntryKind("tags", Tag, "tags", many=True, label="tag"),
        EntryKind("document-types", DocumentType, "document_type", label="document type"),
        EntryKind("correspondents", Correspondent, "correspondent", label="correspondent"),
        EntryKind("storage-paths", StoragePath, "storage_path", label="storage path"),
        EntryKind("custom-fields", CustomField, None, label="custom field"),
    )
}


def entry_kind(slug: str) -> EntryKind:
    if slug not in KINDS:
        raise NotFound("No such list.")
    return KINDS[slug]


# --- Reads ------------------------------------------------------------------------------------


def entries_available(*, viewer: Viewer, kind: EntryKind) -> QuerySet[Any]:
    """The entries ``viewer`` may use, each with ``document_count``: how many of the
    documents the viewer may see carry it (the trash not counted)."""
    visibility = visibility_for(viewer)
    prefix = "values__document__" if kind.document_field is None else "documents__"
    seen = Q(**{f"{prefix}trashed_at__isnull": True})
    if not visibility.all_owners:
        seen &= Q(**{f"{prefix}owner_id__in": sorted(visibility.owner_ids)})
    counted = "values" if kind.document_field is None else "documents"
    entries: QuerySet[Any] = (
        kind.model.objects.available_to(viewer)
        .annotate(document_count=Count(counted, filter=seen, distinct=kind.many))
        .order_by("name", "pk")
    )
    return entries


def entry_get(*, viewer: Viewer, kind: EntryKind, entry_id: int) -> Any:
    entry = kind.model.objects.available_to(viewer).filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(f"No such {kind.label}.")
    return entry


def entry_changeable(*, viewer: Viewer, entry: TaxonomyEntry) -> bool:
    """Whether ``viewer`` may change (rename, merge, delete) one of the entries they may
    use: their own, or with operator rights any, the global ones included."""
    return viewer.operator or (
        entry.owner_id is not None and entry.owner_id == getattr(viewer.user, "pk", None)
    )


def entries_mergeable(*, viewer: Viewer, source: TaxonomyEntry, target: TaxonomyEntry) -> bool:
    """Whether ``entry_merge`` would move ``source``'s documents onto ``target``: both are
    the viewer's to change, and a user's own entry takes only that user's entries (a
    global one takes any), so nobody's documents end up carrying another owner's entry."""
    return (
        source.pk != target.pk
        and entry_changeable(viewer=viewer, entry=source)
        and entry_changeable(viewer=viewer, entry=target)
        and (target.owner_id is None or source.owner_id == target.owner_id)
    )


def _entry_for_change(viewer: Viewer, kind: EntryKind, entry_id: int) -> Any:
    """An entry ``viewer`` may change: their own, or a global one with operator rights."""
    entry = entry_get(viewer=viewer, kind=kind, entry_id=entry_id)
    if not entry_changeable(viewer=viewer, entry=entry):
        if entry.owner_id is None:
            raise Forbidden(f"Only operators change a global {kind.label}.")
        raise NotFound(f"No such {kind.label}.")
    return entry


# --- Writes -----------------------------------------------------------------------------------


def entry_create(
    *, viewer: Viewer, kind: EntryKind, name: str, global_entry: bool = False, **attributes: Any
) -> Any:
    """A new entry of the viewer's (or, for operators asking for it, a global one)."""
    if global_entry and not viewer.operator:
        raise Forbidden(f"Only operators add a global {kind.label}.")
    owner = None if global_entry else _user(viewer)
    entry = kind.model(owner=owner)
    _set_name(entry, name, kind=kind)
    _set_attributes(entry, kind, attributes, viewer=viewer)
    _save_unique(entry, kind)
    return entry


def entry_update(*, viewer: Viewer, kind: EntryKind, entry_id: int, changes: dict[str, Any]) -> Any:
    """Rename an entry or change its attributes; documents carrying a renamed entry are
    re-indexed (search shows names)."""
    with transaction.atomic():
        entry = _entry_for_change(viewer, kind, entry_id)
        renamed = "name" in changes and clean_name(str(changes["name"] or "")) != entry.name
        old_template = getattr(entry, "template", None)
        if "name" in changes:
            _set_name(entry, changes.pop("name"), kind=kind)
        _set_attributes(entry, kind, changes, viewer=viewer)
        _save_unique(entry, kind)
        if renamed and kind.document_field:
            document_ids = _document_ids(kind, [entry.pk])
            index_documents_enqueue(document_ids=document_ids)
            if kind.model is not StoragePath:
                _refile(kind, document_ids)
        if kind.model is StoragePath and entry.template != old_template:
            _refile(kind, _document_ids(kind, [entry.pk]))
    return entry


def entry_merge(*, viewer: Viewer, kind: EntryKind, source_ids: list[int], target_id: int) -> Any:
    """Move every document of the ``source_ids`` entries to the target, then delete them."""
    if kind.document_field is None:
        raise InvalidInput("Custom fields cannot be merged.")
    with transaction.atomic():
        target = _entry_for_change(viewer, kind, target_id)
        sources = [_entry_for_change(viewer, kind, source_id) for source_id in dict.fromkeys(source_ids)]
        sources = [source for source in sources if source.pk != target.pk]
        if not sources:
            raise InvalidInput(f"Name at least one other {kind.label} to merge into this one.")
        if not all(entries_mergeable(viewer=viewer, source=source, target=target) for source in sources):
            # Another owner's documents would carry this owner's entry.
            raise InvalidInput(f"Merge into a global {kind.label}, or merge entries of one owner.")
        _move_documents(viewer, kind, [source.pk for source in sources], target)
        for source in sources:
            source.delete()
    return target


def entry_delete(
    *, viewer: Viewer, kind: EntryKind, entry_id: int, replacement_id: int | None = None
) -> None:
    """Delete an entry; its documents get ``replacement_id`` instead when given (a merge)."""
    if replacement_id is not None:
        entry_merge(viewer=viewer, kind=kind, source_ids=[entry_id], target_id=replacement_id)
        return
    with transaction.atomic():
        entry = _entry_for_change(viewer, kind, entry_id)
        document_ids = _document_ids(kind, [entry.pk]) if kind.document_field else []
        _record_moves(viewer, kind, document_ids, old=[entry], new=None)
        if kind.document_field and not kind.many:
            Document.objects.filter(pk__in=document_ids).update(**{kind.document_field: None})
        entry.delete()
        index_documents_enqueue(document_ids=document_ids)
        _refile(kind, document_ids)


def _refile(kind: EntryKind, document_ids: list[int]) -> None:
    """The documents whose entry changed are filed again in the background: their stored
    name may name it (a storage path's template, ``{correspondent}`` in one), and their
    PDF and sidecar do (author, subject, keywords), except for a storage path's."""
    if kind.document_field is None:
        return
    documents_refile_enqueue(
        document_ids=document_ids,
        from_step="finalize" if kind.model is StoragePath else REFILE_FROM_STEP,
        message=f"A {kind.label} changed: filed again",
    )


def _move_documents(viewer: Viewer, kind: EntryKind, source_ids: list[int], target: Any) -> None:
    document_ids = _document_ids(kind, source_ids)
    sources = list(kind.model.objects.filter(pk__in=source_ids))
    _record_moves(viewer, kind, document_ids, old=sources, new=target)
    if kind.many:
        through = Document.tags.through
        carrying = set(through.objects.filter(tag_id=target.pk).values_list("document_id", flat=True))
        through.objects.bulk_create(
            [through(document_id=pk, tag_id=target.pk) for pk in document_ids if pk not in carrying],
            batch_size=1000,
        )
        through.objects.filter(tag_id__in=source_ids).delete()
    else:
        Document.objects.filter(pk__in=document_ids).update(**{kind.document_field or "": target})
    index_documents_enqueue(document_ids=document_ids)
    _refile(kind, document_ids)


def _record_moves(
    viewer: Viewer, kind: EntryKind, document_ids: list[int], *, old: list[Any], new: Any
) -> None:
    """One history row per document moved: the field went from the old entry to the new."""
    actor = viewer.user if isinstance(viewer.user, User) else None
    old_names = ", ".join(sorted(entry.name for entry in old))
    DocumentChange.objects.bulk_create(
        (
            DocumentChange(
                document_id=pk, actor=actor, actor_name=actor.get_username() if actor else "",
                origin=ChangeOrigin.MERGE, field=kind.history_field, old=old_names,
                new=new.name if new is not None else None,
            )
            for pk in document_ids
        ),
        batch_size=1000,
    )  # fmt: skip
    if document_ids:
        # An edit made on the old reading of these documents is out of date now.
        Document.objects.filter(pk__in=document_ids).update(version=F("version") + 1)


def _document_ids(kind: EntryKind, entry_ids: list[int]) -> list[int]:
    if kind.many:
        rows = Document.tags.through.objects.filter(tag_id__in=entry_ids).values_list(
            "document_id", flat=True
        )
        return sorted(set(rows))
    field = f"{kind.document_field}_id__in"
    return list(Document.objects.filter(**{field: entry_ids}).order_by("pk").values_list("pk", flat=True))


def _user(viewer: Viewer) -> User:
    if not isinstance(viewer.user, User):
        raise Forbidden("Sign in to keep lists of your own.")
    return viewer.user


def _set_name(entry: TaxonomyEntry, raw: Any, *, kind: EntryKind) -> None:
    name = clean_name(str(raw or ""))
    if not match_key(name):
        raise InvalidInput(f"A {kind.label} needs a name.")
    entry.name = name


def _save_unique(entry: TaxonomyEntry, kind: EntryKind) -> None:
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        raise Conflict(f"There is a {kind.label} called {entry.name!r} already.") from None


def _set_attributes(entry: Any, kind: EntryKind, attributes: dict[str, Any], *, viewer: Viewer) -> None:
    """The attributes of each list beside the name, checked; an unknown one is refused."""
    allowed = {
        Tag: {"colour", "parent_tag", "is_inbox"},
        StoragePath: {"template"},
        CustomField: {"data_type", "options", "default_currency", "extract_from"},
    }.get(kind.model, set())
    if unknown := set(attributes) - allowed:
        raise InvalidInput(f"A {kind.label} has no {', '.join(sorted(unknown))}.")
    if "colour" in attributes:
        if not _COLOUR.match(str(attributes["colour"])):
            raise InvalidInput("colour takes a colour such as #1f77b4.")
        entry.colour = str(attributes["colour"]).lower()
    if "is_inbox" in attributes:
        entry.is_inbox = bool(attributes["is_inbox"])
    if "parent_tag" in attributes:
        entry.parent = _parent(entry, attributes["parent_tag"], viewer=viewer)
    if "template" in attributes:
        from documents.organise.storage_paths import filename_template_validate

        entry.template = filename_template_validate(str(attributes["template"] or ""))
    if kind.model is CustomField:
        _custom_field_attributes(entry, attributes)


def _parent(tag: Tag, parent_id: Any, *, viewer: Viewer) -> Tag | None:
    if parent_id is None:
        return None
    parent = (
        Tag.objects.available_to(viewer).filter(pk=parent_id).first() if isinstance(parent_id, int) else None
    )
    if parent is None or (parent.owner_id is not None and parent.owner_id != tag.owner_id):
        raise InvalidInput("parent takes the id of a tag of the same owner, or a global one.")
    ancestor: Tag | None = parent
    for _ in range(MAX_TAG_DEPTH):
        if ancestor is None:
            return cast(Tag, parent)
        if tag.pk is not None and ancestor.pk == tag.pk:
            raise InvalidInput("A tag cannot be its own ancestor.")
        ancestor = ancestor.parent
    raise InvalidInput(f"Tags nest at most {MAX_TAG_DEPTH} deep.")


def _custom_field_attributes(entry: CustomField, attributes: dict[str, Any]) -> None:
    if "data_type" in attributes:
        if entry.pk is not None and attributes["data_type"] != entry.data_type:
            raise InvalidInput("A custom field keeps its type; add a new field for another type.")
        if attributes["data_type"] not in CustomFieldType.values:
            raise InvalidInput("data_type takes one of " + ", ".join(CustomFieldType.values) + ".")
        entry.data_type = attributes["data_type"]
    if not entry.data_type:
        raise InvalidInput("A custom field needs a data_type.")
    if "options" in attributes:
        options = attributes["options"] or []
        if not isinstance(options, list) or len(options) > MAX_OPTIONS:
            raise InvalidInput(f"options takes a list of at most {MAX_OPTIONS} names.")
        entry.options = list(
            dict.fromkeys(clean_name(str(option)) for option in options if clean_name(str(option)))
        )
    if entry.data_type == CustomFieldType.SELECT and not entry.options:
        raise InvalidInput("A select field needs options.")
    if "default_currency" in attributes:
        currency = str(attributes["default_currency"] or "").upper()
        if currency and not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
            raise InvalidInput("default_currency takes a three-letter code such as EUR.")
        entry.default_currency = currency
    if "extract_from" in attributes:
        source = str(attributes["extract_from"] or "")
        if source not in {"", "total"}:
            raise InvalidInput("extract_from takes total, or nothing.")
        if source and entry.data_type not in {CustomFieldType.MONETARY, CustomFieldType.DECIMAL}:
            raise InvalidInput("Only a monetary or decimal field is filled from the total.")
        entry.extract_from = source
