"""Shapes of the review inbox's API: the queue and a confirmation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from documents.api.organise_serializers import FileEditInputSerializer
from documents.api.serializers import PaginationOutputSerializer, _DocumentBaseOutputSerializer
from documents.models import Document


class SuggestionOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(allow_null=True, help_text="The entry's id; null when it no longer exists.")
    name = serializers.CharField()
    confidence = serializers.IntegerField(help_text="How sure the owner's learned matching is, 0-100.")
    set = serializers.BooleanField(help_text="Whether matching set it (it was sure enough).")


class SuggestionsOutputSerializer(serializers.Serializer[Any]):
    document_type = SuggestionOutputSerializer(required=False, allow_null=True)
    correspondent = SuggestionOutputSerializer(required=False, allow_null=True)
    tags = SuggestionOutputSerializer(many=True, required=False)


class ReviewItemOutputSerializer(_DocumentBaseOutputSerializer):
    correspondent = serializers.CharField(source="correspondent_name")
    tag_ids = serializers.SerializerMethodField()
    inbox = serializers.SerializerMethodField()
    suggestions = serializers.SerializerMethodField()
    version = serializers.IntegerField(help_text="Send it back with the confirmation.")

    class Meta(_DocumentBaseOutputSerializer.Meta):
        fields = [
            *_DocumentBaseOutputSerializer.Meta.fields,
            "correspondent", "document_date", "language", "document_type_id", "correspondent_id",
            "tag_ids", "confidence", "inbox", "suggestions", "version",
        ]  # fmt: skip

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_tag_ids(self, document: Document) -> list[int]:
        return sorted(tag.pk for tag in document.tags.all())

    @extend_schema_field(serializers.BooleanField(help_text="It carries an inbox tag."))
    def get_inbox(self, document: Document) -> bool:
        return any(tag.is_inbox for tag in document.tags.all())

    @extend_schema_field(SuggestionsOutputSerializer)
    def get_suggestions(self, document: Document) -> dict[str, Any]:
        stored = document.metadata.get("suggestions") if isinstance(document.metadata, dict) else None
        return SuggestionsOutputSerializer(stored or {}).data


class ReviewQueueInputSerializer(serializers.Serializer[Any]):
    page = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=200, default=50)


class ReviewQueueOutputSerializer(serializers.Serializer[Any]):
    files = ReviewItemOutputSerializer(source="items", many=True)
    pagination = PaginationOutputSerializer(source="*")


class ReviewInputSerializer(FileEditInputSerializer):
    """Corrections, as an edit takes them; none: the document is confirmed as it is."""


class ReviewOutputSerializer(serializers.Serializer[Any]):
    reviewed = ReviewItemOutputSerializer()
    next = serializers.IntegerField(
        allow_null=True, help_text="The id of the next document waiting, or null."
    )
    remaining = serializers.IntegerField(help_text="How many documents still wait.")
