"""Shapes of the search API: input serializers check requests, output serializers render
every answer the schema describes; the rules live in services."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from docuelevate.bounds import MAX_PAGE
from documents.api.organise_serializers import OrganiseFiltersInputSerializer
from search.backends.base import FACET_FIELDS, FacetCount
from search.selectors import MAX_PER_PAGE, SearchResult


class SearchInputSerializer(OrganiseFiltersInputSerializer):
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


# --- Answers -------------------------------------------------------------------------------


class OffsetDateTimeField(serializers.DateTimeField):
    """A moment as Python writes it (``2024-03-01T09:30:00+00:00``), not as DRF does
    (``…Z``): the search answer has always spelt it so, and clients may read the text."""

    def to_representation(self, value: datetime.datetime) -> str:
        return value.isoformat()


class FormattedOutputSerializer(serializers.Serializer[Any]):
    document_title = serializers.CharField(
        help_text="The title with matches in <mark>…</mark>; HTML-escaped."
    )
    ocr_text = serializers.CharField(
        help_text="Passages of the text around the matches, marked the same way."
    )


# Renders a search.services.SearchResult.
class SearchHitOutputSerializer(serializers.Serializer[Any]):
    file_id = serializers.IntegerField(source="document.pk")
    original_filename = serializers.CharField(source="document.original_filename")
    document_title = serializers.CharField(source="document.document_title")
    document_type = serializers.CharField(source="document.document_type_name")
    correspondent = serializers.CharField(source="document.correspondent_name")
    tags = serializers.SerializerMethodField()
    mime_type = serializers.CharField(source="document.mime_type")
    document_date = serializers.DateField(source="document.document_date", allow_null=True)
    created_at = OffsetDateTimeField(source="document.created_at")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        # Meilisearch's name for the highlighted copy, which existing clients read.
        fields["_formatted"] = FormattedOutputSerializer(source="formatted")
        return fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, result: SearchResult) -> list[str]:
        # Sorted here, from the tags the search prefetched.
        return sorted(tag.name for tag in result.document.tags.all())


# Renders a search.backends.base.FacetCount.
class FacetValueOutputSerializer(serializers.Serializer[Any]):
    value = serializers.CharField()
    count = serializers.IntegerField(source="matches")


class FacetsOutputSerializer(serializers.Serializer[Any]):
    document_type = FacetValueOutputSerializer(many=True)
    tags = FacetValueOutputSerializer(many=True)
    correspondent = FacetValueOutputSerializer(many=True)
    year = FacetValueOutputSerializer(many=True)

    def to_representation(self, instance: Mapping[str, list[FacetCount]]) -> dict[str, Any]:
        # A search that matched nothing has no counts at all: every facet is then empty.
        return dict(super().to_representation({name: instance.get(name, []) for name in FACET_FIELDS}))


# Renders a search.backends.base.CustomFieldFacet.
class CustomFieldFacetOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="field.id")
    name = serializers.CharField(source="field.name")
    data_type = serializers.CharField(source="field.data_type")
    values = FacetValueOutputSerializer(
        many=True, help_text='A BOOLEAN field\'s values are "true" and "false".'
    )


# Renders a search.services.SearchResults.
class SearchResultsOutputSerializer(serializers.Serializer[Any]):
    results = SearchHitOutputSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    per_page = serializers.IntegerField()
    query = serializers.CharField()
    facets = FacetsOutputSerializer()
    custom_field_facets = CustomFieldFacetOutputSerializer(
        source="custom_facets",
        many=True,
        help_text="One per SELECT and BOOLEAN custom field the caller may use: its values among the matches.",
    )


# --- Saved searches --------------------------------------------------------------------------


class SavedSearchFiltersInputSerializer(serializers.Serializer[Any]):
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


class SavedSearchInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    query = serializers.CharField(max_length=1000, allow_blank=True, default="", trim_whitespace=False)
    filters = SavedSearchFiltersInputSerializer(required=False, default=dict)


class SavedSearchFiltersOutputSerializer(serializers.Serializer[Any]):
    """The filters as saved: only those the user set (a filter not saved is left out)."""

    document_type = serializers.CharField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    correspondent = serializers.CharField(required=False)
    language = serializers.CharField(required=False)
    mime_type = serializers.CharField(required=False)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)


class SavedSearchOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    query = serializers.CharField()
    filters = SavedSearchFiltersOutputSerializer()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
