"""The documents API: thin views that check the request's shape, call a selector or a
service, and render the answer with the output serializer their schema names. Errors are
ApplicationErrors, turned into JSON ``{"detail"}`` by ``docuelevate.api.exception_handler``."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import quote

from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse
from django.utils.decorators import method_decorator
from django.views.decorators.clickjacking import xframe_options_sameorigin
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import signed_in_user, viewer_for_request
from accounts.models import User
from accounts.permissions import IsOperator
from destinations.selectors import deliveries_for_document
from destinations.services import deliveries_redeliver
from docuelevate.api import ErrorOutputSerializer, validated_query
from docuelevate.errors import ApplicationError
from documents.api import serializers as s
from documents.api.organise_serializers import FileEditInputSerializer
from documents.api.organise_views import file_edit, path_id
from documents.models import Document
from documents.organise.trash import document_trash
from documents.selectors import (
    DocumentFilters,
    StoredFile,
    document_detail,
    document_file,
    document_get_for_user,
    document_list_page,
    document_logs,
    document_preview_file,
    document_stored_filename,
    document_thumbnail,
    documents_by_status,
)
from documents.services import (
    IngestResult,
    document_ingest,
    document_ingest_url,
    document_reprocess,
    document_retry_step,
)
from documents.storage import open_file
from ops.probes.broker import queue_lengths, workers_online

ERRORS = {
    code: OpenApiResponse(ErrorOutputSerializer) for code in (400, 401, 403, 404, 408, 409, 413, 415, 507)
}
# An upload answers with one outcome, or with {"results": [...]} for several files.
INGEST_ANSWERS = PolymorphicProxySerializer(
    component_name="IngestAnswerOrAnswers",
    serializers=[s.IngestAnswerOutputSerializer, s.IngestAnswersOutputSerializer],
    resource_type_field_name=None,
)
DOCUMENT_ID = OpenApiParameter("document_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def file_detail_response(request: Request, document_id: int) -> Response:
    """The file's detail, with its version as the ETag an edit sends back in If-Match."""
    detail = document_detail(
        document=document_get_for_user(viewer=viewer_for_request(request), document_id=document_id)
    )
    return Response(
        s.FileDetailOutputSerializer(detail).data, headers={"ETag": f'"{detail.document.version}"'}
    )


def _document(request: Request, document_id: str) -> Document:
    return document_get_for_user(
        viewer=viewer_for_request(request), document_id=path_id(document_id, "document")
    )


def _ingest_answer(result: IngestResult) -> dict[str, Any]:
    """What a client learns about one ingested file, for IngestAnswerOutputSerializer: the
    keys an outcome does not have stay out of the answer."""
    document = result.document
    answer: dict[str, Any] = {
        "original_filename": document.original_filename,
        "stored_filename": document_stored_filename(document),
        "document_id": document.pk,
    }
    first = document.duplicate_of
    if result.is_duplicate and first is not None:
        return {
            "status": "duplicate",
            **answer,
            "duplicate_of": {
                "duplicate_type": "exact",
                "original_file_id": first.pk,
                "original_filename": first.original_filename,
                "message": f"Already uploaded as document {first.pk} ({first.original_filename}).",
            },
        }
    return {"task_id": result.task_id, "status": "queued", **answer}


def _task_queued(task_id: str, document: Document) -> Response:
    """202: the document's work is on its way to a worker."""
    answer = {"task_id": task_id, "document_id": document.pk, "status": "queued"}
    return Response(s.TaskQueuedOutputSerializer(answer).data, status=status.HTTP_202_ACCEPTED)


# The preview's own policy, sent whether or not the site-wide one is (the CSP middleware
# leaves a response that has one alone). A sandboxed document has an opaque origin and
# runs no script, so nothing a PDF carries acts as DocuElevate: an original is previewed
# before processing strips its active content, and a file may only claim to be a PDF.
PREVIEW_CONTENT_SECURITY_POLICY = "sandbox; default-src 'none'; frame-ancestors 'self'"
THUMBNAIL_CACHE = "private, max-age=300"


def _file_response(stored: StoredFile, *, as_attachment: bool) -> FileResponse:
    response = FileResponse(open_file(stored.name), content_type=stored.content_type)
    response["Content-Disposition"] = content_disposition(
        "attachment" if as_attachment else "inline", stored.filename
    )
    return response


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266 header: the exact name as ``filename*`` (UTF-8), and an ASCII ``filename``
    first for clients that read only that one (curl -J, old browsers)."""
    fallback = unicodedata.normalize("NFKD", filename.replace("ß", "ss")).encode("ascii", "ignore").decode()
    fallback = re.sub(r"\s+", " ", re.sub(r'["\\\x00-\x1f\x7f]', "_", fallback)).strip() or "document"
    if fallback == filename:
        return f'{disposition}; filename="{filename}"'
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# --- Ingest --------------------------------------------------------------------------------


class UploadView(APIView):
    """Upload one or more files (``/api/ui-upload``, and ``/api/files/upload`` for the
    browser extension)."""

    @extend_schema(
        operation_id="files_upload",
        tags=["files"],
        request={"multipart/form-data": s.UploadInputSerializer},
        responses={200: OpenApiResponse(INGEST_ANSWERS, description="One file: its outcome; several: "
                   '``{"results": [...]}`` with one outcome each.'), **ERRORS},
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        serializer = s.UploadInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        owner = signed_in_user(request)
        # A script with a token is "api"; the upload page (the signed-in session) is "upload".
        source = "upload" if request.auth is None else "api"
        files: list[UploadedFile[bytes]] = serializer.validated_data["file"]
        if len(files) == 1:
            # One file: a refusal is the answer's HTTP status.
            answer = _ingest_answer(_ingest_upload(owner, files[0], source))
            return Response(s.IngestAnswerOutputSerializer(answer).data)
        results = []
        for upload in files:
            # Several files: each is answered on its own, a refused one does not stop the rest.
            try:
                results.append(_ingest_answer(_ingest_upload(owner, upload, source)))
            except ApplicationError as error:
                results.append({"status": "error", "original_filename": upload.name, "detail": error.message})
        return Response(s.IngestAnswersOutputSerializer({"results": results}).data)


@extend_schema_view(
    post=extend_schema(operation_id="files_upload_extension", description="The same as ``/api/ui-upload``.")
)
class ExtensionUploadView(UploadView):
    """``/api/files/upload``, the browser extension's route; a class of its own for the schema."""


def _ingest_upload(owner: User, upload: UploadedFile[bytes], source: str) -> IngestResult:
    return document_ingest(
        owner=owner, chunks=upload.chunks(), filename=upload.name or "upload", source=source
    )


class ProcessUrlView(APIView):
    """Fetch a file from a public http(s) URL and process it like an upload.

    Answers 202 at once with the document's id: a worker downloads the file, and a failed
    download fails the document with the reason.
    """

    @extend_schema(
        operation_id="files_process_url",
        tags=["files"],
        request=s.ProcessUrlInputSerializer,
        responses={202: s.IngestAnswerOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = s.ProcessUrlInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = document_ingest_url(
            owner=signed_in_user(request),
            url=serializer.validated_data["url"],
            filename=serializer.validated_data.get("filename") or None,
        )
        answer = s.IngestAnswerOutputSerializer(_ingest_answer(result)).data
        return Response(answer, status=status.HTTP_202_ACCEPTED)


# --- Documents -----------------------------------------------------------------------------


class FileListView(APIView):
    """The documents the user may see, filtered, sorted and one page at a time."""

    @extend_schema(
        operation_id="files_list",
        tags=["files"],
        parameters=[s.FileListInputSerializer],
        responses={200: s.FileListOutputSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = validated_query(s.FileListInputSerializer, request)
        filters = DocumentFilters.from_query(query)
        page = document_list_page(
            viewer=viewer_for_request(request),
            filters=filters,
            page=query["page"],
            per_page=query["per_page"],
        )
        return Response(s.FileListOutputSerializer(page).data)


class FileDetailView(APIView):
    """One document with its processing state and history; PATCH edits it; DELETE moves it
    to the trash (DELETE /api/trash empties it)."""

    @extend_schema(
        operation_id="files_retrieve",
        tags=["files"],
        parameters=[DOCUMENT_ID],
        responses={200: s.FileDetailOutputSerializer, **ERRORS},
    )
    def get(self, request: Request, document_id: str) -> Response:
        return file_detail_response(request, _document(request, document_id).pk)

    @extend_schema(
        operation_id="files_partial_update",
        tags=["files"],
        parameters=[
            DOCUMENT_ID,
            OpenApiParameter(
                "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER,
                description='The ETag of the reading the edit was made on ("3"); a newer one stored: 412.',
            ),
        ],
        request=FileEditInputSerializer,
        responses={200: s.FileDetailOutputSerializer, 412: OpenApiResponse(ErrorOutputSerializer), **ERRORS},
    )  # fmt: skip
    def patch(self, request: Request, document_id: str) -> Response:
        return file_edit(request, document_id)

    @extend_schema(
        operation_id="files_destroy",
        tags=["files"],
        parameters=[DOCUMENT_ID],
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, document_id: str) -> Response:
        document_trash(viewer=viewer_for_request(request), document_id=_document(request, document_id).pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FileDownloadView(APIView):
    """The processed PDF or the original, as an attachment named after the document."""

    @extend_schema(
        operation_id="files_download",
        tags=["files"],
        parameters=[DOCUMENT_ID, s.DownloadInputSerializer],
        # The processed PDF, or the original in whatever type it was uploaded as.
        responses={(200, "*/*"): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request: Request, document_id: str) -> FileResponse:
        version = validated_query(s.DownloadInputSerializer, request).get("version")
        stored = document_file(document=_document(request, document_id), version=version)
        return _file_response(stored, as_attachment=True)


class FilePreviewView(APIView):
    """The document's PDF, inline, for the browser's viewer."""

    @extend_schema(
        operation_id="files_preview",
        tags=["files"],
        parameters=[DOCUMENT_ID],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, **ERRORS},
    )
    # The document page (/files/{id}) shows the preview in a frame; other sites still may
    # not. Both headers say so: X-Frame-Options for old browsers, CSP frame-ancestors
    # (which wins where both are understood).
    @method_decorator(xframe_options_sameorigin)
    def get(self, request: Request, document_id: str) -> FileResponse:
        response = _file_response(
            document_preview_file(document=_document(request, document_id)), as_attachment=False
        )
        response["Content-Security-Policy"] = PREVIEW_CONTENT_SECURITY_POLICY
        return response


class FileThumbnailView(APIView):
    """A small PNG of the document's first page (300 pixels wide), made when it was filed."""

    @extend_schema(
        operation_id="files_thumbnail",
        tags=["files"],
        parameters=[DOCUMENT_ID],
        description="A PNG of the first page, 300 pixels wide and at most 480 high. 404 while the "
        "document has none: not processed yet, failed, or processed before thumbnails were made "
        "(`manage.py thumbnails --missing` makes those).",
        responses={(200, "image/png"): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request: Request, document_id: str) -> FileResponse:
        response = _file_response(
            document_thumbnail(document=_document(request, document_id)), as_attachment=False
        )
        # Reprocessing replaces it under the same address: cached briefly, by the client only.
        response["Cache-Control"] = THUMBNAIL_CACHE
        return response


class FileReprocessView(APIView):
    """Run the whole pipeline again."""

    @extend_schema(
        operation_id="files_reprocess",
        tags=["files"],
        request=None,
        parameters=[DOCUMENT_ID, s.ReprocessInputSerializer],
        responses={202: s.TaskQueuedOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, document_id: str) -> Response:
        query = validated_query(s.ReprocessInputSerializer, request)
        document = _document(request, document_id)
        task_id = document_reprocess(document=document, force_ocr=query["force_ocr"])
        return _task_queued(task_id, document)


class FileRetrySubtaskView(APIView):
    """Run one step again, and the steps after it."""

    @extend_schema(
        operation_id="files_retry_subtask",
        tags=["files"],
        request=None,
        parameters=[DOCUMENT_ID, s.RetrySubtaskInputSerializer],
        responses={202: s.TaskQueuedOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, document_id: str) -> Response:
        query = validated_query(s.RetrySubtaskInputSerializer, request)
        document = _document(request, document_id)
        task_id = document_retry_step(
            document=document, step_name=query["subtask_name"], force_ocr=query["force_ocr"]
        )
        return _task_queued(task_id, document)


class FileRedeliverView(APIView):
    """Deliver the document again: to all its destinations, or to ``?destination=<id>``."""

    @extend_schema(
        operation_id="files_redeliver",
        tags=["files"],
        request=None,
        parameters=[DOCUMENT_ID, s.RedeliverInputSerializer],
        responses={202: s.RedeliverOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, document_id: str) -> Response:
        query = validated_query(s.RedeliverInputSerializer, request)
        document = _document(request, document_id)
        due = deliveries_redeliver(document=document, destination_id=query.get("destination"))
        answer = {
            "document_id": document.pk,
            "queued": len(due),
            "deliveries": deliveries_for_document(document),
        }
        return Response(s.RedeliverOutputSerializer(answer).data, status=status.HTTP_202_ACCEPTED)


class FileLogsView(APIView):
    """A document's processing history, oldest first."""

    @extend_schema(
        operation_id="logs_file",
        tags=["files"],
        parameters=[DOCUMENT_ID],
        responses={200: s.FileLogsOutputSerializer, **ERRORS},
    )
    def get(self, request: Request, document_id: str) -> Response:
        document = _document(request, document_id)
        logs = {"file_id": document.pk, "logs": document_logs(document=document)}
        return Response(s.FileLogsOutputSerializer(logs).data)


# --- Operations ----------------------------------------------------------------------------


class QueueStatsView(APIView):
    """Queue lengths, workers online and documents by status, for operators."""

    permission_classes = [IsOperator]

    @extend_schema(
        operation_id="queue_stats",
        tags=["operations"],
        responses={200: s.QueueStatsOutputSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        stats = {
            "queues": queue_lengths(),
            "workers_online": workers_online(),
            "documents_by_status": documents_by_status(viewer=viewer_for_request(request)),
        }
        return Response(s.QueueStatsOutputSerializer(stats).data)
