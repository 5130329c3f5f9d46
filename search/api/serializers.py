"""Shapes of the search API. They check and describe shapes only; the rules live in services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from docuelevate.bounds import MAX_PAGE
from search.selectors import MAX_PER_PAGE


class SearchQuerySerializer(serializers.Serializer[Any]):
    q = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False,
        help_text='Words (all must occur), "exact phrases", -excluded; the last word matches as a prefix '
        "unless followed by a space. Empty: everything the filters admit, newest first.",
    )  # fmt: skip
    document_type = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Comma-separated; documents having all."
    )
    correspondent = serializers.CharField(required=False, allow_blank=True, default="")
    language = serializers.CharField(required=False, allow_blank=True, default="", max_length=8)
    mime_type = serializers.CharField(required=False, allow_blank=True, default="", max_length=127)
    date_from = serializers.DateField(required=False, allow_null=True, default=None)
    date_to = serializers.DateField(required=False, allow_null=True, default=None)
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=MAX_PER_PAGE, default=20)


class FormattedSerializer(serializers.Serializer[Any]):
    document_title = serializers.CharField(
        help_text="The title with matches in <mark>…</mark>; HTML-escaped."
    )
    ocr_text = serializers.CharField(
        help_text="Passages of the text around the matches, marked the same way."
    )


class SearchHitSerializer(serializers.Serializer[Any]):
    file_id = serializers.IntegerField()
    original_filename = serializers.CharField()
    document_title = serializers.CharField()
    document_type = serializers.CharField()
    correspondent = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    mime_type = serializers.CharField()
    document_date = serializers.DateField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        # Meilisearch's name for the highlighted copy, which existing clients read.
        fields["_formatted"] = FormattedSerializer()
        return fields


class FacetValueSerializer(serializers.Serializer[Any]):
    value = serializers.CharField()
    count = serializers.IntegerField()


class FacetsSerializer(serializers.Serializer[Any]):
    document_type = FacetValueSerializer(many=True)
    tags = FacetValueSerializer(many=True)
    correspondent = FacetValueSerializer(many=True)
    year = FacetValueSerializer(many=True)


class SearchResultsSerializer(serializers.Serializer[Any]):
    results = SearchHitSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    per_page = serializers.IntegerField()
    query = serializers.CharField()
    facets = FacetsSerializer()


class SavedSearchFiltersSerializer(serializers.Serializer[Any]):
    document_type = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=20)
    correspondent = serializers.CharField(required=False, allow_blank=True)
    language = serializers.CharField(required=False, allow_blank=True, max_length=8)
    mime_type = serializers.CharField(required=False, allow_blank=True, max_length=127)
    date_from = serializers.DateField(required=False, allow_null=True)
    date_to = serializers.DateField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> Any:
        # A misspelt filter silently dropped would save a different search than the user meant.
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError(f"Unknown filter(s): {', '.join(unknown)}.")
        return super().to_internal_value(data)


class SavedSearchSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    query = serializers.CharField(max_length=1000, allow_blank=True, default="", trim_whitespace=False)
    filters = SavedSearchFiltersSerializer(required=False, default=dict)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
