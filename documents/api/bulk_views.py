"""Bulk edits through the API: POST /api/files/bulk-edit starts one (202 with its id),
GET /api/bulk-operations/{id} follows it. Thin: shapes here, rules in
documents.organise.bulk."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import viewer_for_request
from docuelevate.api import ErrorOutputSerializer, validated_body
from docuelevate.bounds import MAX_ID
from docuelevate.errors import InvalidInput, NotFound
from documents.models import BulkAction, BulkOperation, BulkStatus
from documents.organise.bulk import BULK_MAX_DOCUMENTS, bulk_edit_start, bulk_operation_get

ERRORS = {code: OpenApiResponse(ErrorOutputSerializer) for code in (400, 401, 403, 404, 415)}


class BulkEditInputSerializer(serializers.Serializer[Any]):
    documents = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=BULK_MAX_DOCUMENTS,
        help_text="The documents' ids; or give query instead.",
    )
    query = serializers.DictField(
        required=False,
        help_text="Every document the files list shows for these filters (its query parameters: "
        "search, status, mime_type, source, tags, date_from, date_to).",
    )
    action = serializers.ChoiceField(choices=BulkAction.choices)
    parameters = serializers.DictField(
        required=False,
        default=dict,
        help_text='add_tags/remove_tags: {"tags": [ids or names]}; set_document_type, '
        'set_correspondent, set_storage_path: {"document_type"|"correspondent"|"storage_path": '
        'id, name or null}; set_custom_field: {"field": id, "value": value or null}; '
        'set_owner (operators): {"owner": user id}; reprocess: {"force_ocr": bool}; trash: {}.',
    )


class BulkEditStartedOutputSerializer(serializers.Serializer[BulkOperation]):
    operation_id = serializers.UUIDField(source="pk")
    status = serializers.ChoiceField(choices=BulkStatus.choices)
    total = serializers.IntegerField()


class BulkErrorOutputSerializer(serializers.Serializer[Any]):
    document_id = serializers.IntegerField()
    detail = serializers.CharField()


class BulkOperationOutputSerializer(serializers.Serializer[BulkOperation]):
    operation_id = serializers.UUIDField(source="pk")
    action = serializers.ChoiceField(choices=BulkAction.choices)
    parameters = serializers.DictField()
    status = serializers.ChoiceField(choices=BulkStatus.choices)
    total = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Documents handled so far, changed or refused.")
    failed = serializers.IntegerField(help_text="Documents refused (gone, legal hold, another's entry).")
    errors = BulkErrorOutputSerializer(many=True, help_text="The first refusals, with the reason.")  # type: ignore[assignment]  # a field named like Serializer.errors
    detail = serializers.CharField(help_text="Why the operation itself failed, if it did.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class BulkEditView(APIView):
    """Start a bulk edit; a worker does it in chunks, GET /api/bulk-operations/{id} shows how far."""

    @extend_schema(
        operation_id="files_bulk_edit", tags=["files"], request=BulkEditInputSerializer,
        responses={202: BulkEditStartedOutputSerializer, **ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        data = validated_body(BulkEditInputSerializer, request)
        selection: dict[str, Any] = {name: data[name] for name in ("documents", "query") if name in data}
        if len(selection) != 1:
            raise InvalidInput("Give either documents (ids) or query (filters).")
        operation = bulk_edit_start(
            viewer=viewer_for_request(request),
            selection=selection,
            action=data["action"],
            parameters=data["parameters"],
        )
        return Response(BulkEditStartedOutputSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


class BulkOperationView(APIView):
    """How far a bulk edit has come: its asker's, or any for an operator."""

    @extend_schema(
        operation_id="bulk_operations_retrieve", tags=["files"],
        parameters=[OpenApiParameter("operation_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: BulkOperationOutputSerializer, **ERRORS},
    )  # fmt: skip
    def get(self, request: Request, operation_id: str) -> Response:
        operation = bulk_operation_get(viewer=viewer_for_request(request), operation_id=_uuid(operation_id))
        return Response(BulkOperationOutputSerializer(operation).data)


def _uuid(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound("No such bulk operation.") from None
