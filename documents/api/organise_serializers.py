"""Shapes of the organising API: edits, the managed lists, notes, history and the trash."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from docuelevate.api_fields import StrictInputSerializer
from docuelevate.bounds import MAX_ID
from documents.models import CustomFieldType, CustomFieldValue, DocumentChange, Note
from documents.organise.custom_fields import custom_value_shown

ENTRY_REFERENCE = {
    "oneOf": [{"type": "integer"}, {"type": "string"}],
    "nullable": True,
    "description": "An entry's id, or its name; null clears it.",
}


@extend_schema_field(ENTRY_REFERENCE)
class EntryReferenceField(serializers.Field[Any, Any, Any, Any]):
    """An entry by id or by name (names are what the document's answer shows)."""

    def to_internal_value(self, data: Any) -> Any:
        if data is None or (isinstance(data, int) and not isinstance(data, bool)):
            return data
        if isinstance(data, str) and len(data) <= 128:
            return int(data) if data.isdigit() else data
        raise serializers.ValidationError("Give an id or a name, or null.")

    def to_representation(self, value: Any) -> Any:
        return value


class OrganiseFiltersInputSerializer(serializers.Serializer[Any]):
    """The filters by tag tree and custom field, which the files list and the search share
    (documents.organise.filters checks the ids against what the viewer may use)."""

    tag_tree = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        default=None,
        help_text="A tag's id: documents carrying it or any tag nested under it.",
    )
    custom_field = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        default=None,
        help_text="A custom field's id: documents whose value of it matches cf_value, cf_min/cf_max or "
        "cf_exists (alone: documents with a value).",
    )
    cf_value = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2048,
        help_text="Equal to this value (text exactly; numbers, dates YYYY-MM-DD, true/false).",
    )
    cf_min = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=40,
        help_text="At least this (integer, decimal, monetary and date fields).",
    )
    cf_max = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=40,
        help_text="At most this (integer, decimal, monetary and date fields).",
    )
    cf_exists = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: documents with a value of the field; false: those without one.",
    )


class FileEditInputSerializer(StrictInputSerializer):
    """The fields to change; those left out stay as they are."""

    document_title = serializers.CharField(required=False, max_length=255)
    document_type = EntryReferenceField(required=False, allow_null=True)
    correspondent = EntryReferenceField(required=False, allow_null=True)
    storage_path = EntryReferenceField(required=False, allow_null=True)
    document_date = serializers.DateField(required=False, allow_null=True)
    tags = serializers.ListField(child=EntryReferenceField(), required=False, max_length=500)
    language = serializers.CharField(required=False, allow_blank=True, max_length=16)
    owner = serializers.IntegerField(required=False, min_value=1, help_text="Operators only: a user's id.")
    custom_fields = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text='Field id -> value, null removes it. Money: {"amount": "12.50", "currency": "EUR"}.',
    )
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="The version the edit was made on (or send If-Match)."
    )


class CustomValueOutputSerializer(serializers.Serializer[CustomFieldValue]):
    field = serializers.IntegerField(source="field_id")
    name = serializers.CharField(source="field.name")
    data_type = serializers.ChoiceField(source="field.data_type", choices=CustomFieldType.choices)
    value = serializers.SerializerMethodField(method_name="shown_value")

    @extend_schema_field(serializers.JSONField())
    def shown_value(self, value: CustomFieldValue) -> Any:
        return custom_value_shown(value)


class NoteInputSerializer(StrictInputSerializer):
    text = serializers.CharField(max_length=10_000)


class NoteOutputSerializer(serializers.ModelSerializer[Note]):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Note
        fields = ["id", "text", "author", "created_at"]

    def get_author(self, note: Note) -> str:
        return note.author.get_username() if note.author else ""


class ChangeOutputSerializer(serializers.ModelSerializer[DocumentChange]):
    actor = serializers.CharField(source="actor_name")
    old = serializers.JSONField()
    new = serializers.JSONField()

    class Meta:
        model = DocumentChange
        fields = ["id", "at", "actor", "origin", "field", "old", "new"]


class FileHistoryOutputSerializer(serializers.Serializer[Any]):
    file_id = serializers.IntegerField()
    changes = ChangeOutputSerializer(many=True)


class EntryInputSerializer(StrictInputSerializer):
    """A list entry; the attributes beside the name belong to one list each."""

    name = serializers.CharField(max_length=128, required=False)
    # Operators only: a global entry, which every user may use.
    is_global = serializers.BooleanField(required=False, default=False, write_only=True)
    colour = serializers.CharField(required=False, max_length=7, help_text="Tags: #rrggbb.")
    parent_tag = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Tags: the parent tag's id."
    )
    is_inbox = serializers.BooleanField(
        required=False, help_text="Tags: new documents get it until reviewed."
    )
    template = serializers.CharField(
        required=False, max_length=500, help_text="Storage paths: the filename template."
    )
    data_type = serializers.ChoiceField(
        required=False, choices=CustomFieldType.choices, help_text="Custom fields."
    )
    options = serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, max_length=200
    )
    default_currency = serializers.CharField(required=False, allow_blank=True, max_length=3)
    extract_from = serializers.ChoiceField(required=False, choices=["", "total"], allow_blank=True)


class EntryOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    owner = serializers.IntegerField(source="owner_id", allow_null=True, help_text="null: a global entry.")
    document_count = serializers.IntegerField(required=False)
    colour = serializers.CharField(required=False)
    parent_tag = serializers.IntegerField(source="parent_id", required=False, allow_null=True)
    is_inbox = serializers.BooleanField(required=False)
    template = serializers.CharField(required=False)
    data_type = serializers.CharField(required=False)
    options = serializers.ListField(child=serializers.CharField(), required=False)
    default_currency = serializers.CharField(required=False)
    extract_from = serializers.CharField(required=False)
    # Each list answers with its own attributes: DRF leaves out a field that is not
    # required when the entry has no such attribute.


class MergeInputSerializer(StrictInputSerializer):
    sources = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=500)


class DeleteEntryInputSerializer(serializers.Serializer[Any]):
    replacement = serializers.IntegerField(
        required=False, min_value=1, help_text="Move its documents here first."
    )


class TrashedFileOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    original_filename = serializers.CharField()
    document_title = serializers.CharField()
    trashed_at = serializers.DateTimeField()


class TrashListOutputSerializer(serializers.Serializer[Any]):
    results = TrashedFileOutputSerializer(many=True)
    empty_after_days = serializers.IntegerField()


class TrashEmptiedOutputSerializer(serializers.Serializer[Any]):
    deleted = serializers.IntegerField()
