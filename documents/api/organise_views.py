"""The organising API: edit a file (PATCH /api/files/{id}), its notes and history, the
trash, and the managed lists (/api/tags, /api/document-types, /api/correspondents,
/api/storage-paths, /api/custom-fields). Thin: shapes checked here, rules in
documents.organise."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import viewer_for_request
from docuelevate.api import ErrorOutputSerializer, validated_body, validated_query
from docuelevate.bounds import parse_id
from docuelevate.errors import InvalidInput, NotFound
from documents.api import organise_serializers as o
from documents.models import ChangeOrigin, Document, Note
from documents.organise import lists, notes, trash
from documents.organise.editing import document_history, document_update
from documents.selectors import document_get_for_user

ERRORS = {code: OpenApiResponse(ErrorOutputSerializer) for code in (400, 401, 403, 404, 409, 412, 415)}
DOCUMENT_ID = OpenApiParameter("document_id", OpenApiTypes.INT, OpenApiParameter.PATH)
ENTRY_ID = OpenApiParameter("entry_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def path_id(raw: str, what: str) -> int:
    """An id from the path; ids arrive as text so that a malformed one, or one beyond any
    key, is a JSON 404 here, not an HTML page from the URL resolver."""
    number = parse_id(raw)
    if number is None:
        raise NotFound(f"No such {what}.")
    return number


def if_match_version(request: Request) -> int | None:
    """The version an If-Match header names ("3", or W/"3"), or None without one."""
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        return None
    value = header.removeprefix("W/").strip('"')
    if not value.isdigit():
        raise InvalidInput('If-Match takes the ETag of the file, such as "3".')
    return int(value)


def file_edit(request: Request, document_id: str) -> Response:
    """PATCH /api/files/{id}, called by FileDetailView: the edit, answered as GET answers."""
    from documents.api.views import file_detail_response

    changes = validated_body(o.FileEditInputSerializer, request)
    expected = if_match_version(request)
    body_version = changes.pop("version", None)
    document = document_update(
        viewer=viewer_for_request(request),
        document_id=path_id(document_id, "document"),
        changes=changes,
        expected_version=expected if expected is not None else body_version,
        origin=ChangeOrigin.API,
    )
    return file_detail_response(request, document.pk)


class FileNotesView(APIView):
    """The notes on a document; POST adds one."""

    @extend_schema(operation_id="files_notes_list", tags=["files"], parameters=[DOCUMENT_ID],
                   responses={200: o.NoteOutputSerializer(many=True), **ERRORS})  # fmt: skip
    def get(self, request: Request, document_id: str) -> Response:
        document = document_get_for_user(
            viewer=viewer_for_request(request), document_id=path_id(document_id, "document")
        )
        found = Note.objects.filter(document=document).select_related("author")
        return Response(o.NoteOutputSerializer(found, many=True).data)

    @extend_schema(
        operation_id="files_notes_create", tags=["files"], parameters=[DOCUMENT_ID],
        request=o.NoteInputSerializer, responses={201: o.NoteOutputSerializer, **ERRORS},
    )  # fmt: skip
    def post(self, request: Request, document_id: str) -> Response:
        data = validated_body(o.NoteInputSerializer, request)
        note = notes.note_add(
            viewer=viewer_for_request(request),
            document_id=path_id(document_id, "document"),
            text=data["text"],
        )
        return Response(o.NoteOutputSerializer(note).data, status=status.HTTP_201_CREATED)


class FileNoteView(APIView):
    @extend_schema(
        operation_id="files_notes_destroy", tags=["files"], responses={204: None, **ERRORS},
        parameters=[DOCUMENT_ID, OpenApiParameter("note_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    )  # fmt: skip
    def delete(self, request: Request, document_id: str, note_id: str) -> Response:
        notes.note_delete(
            viewer=viewer_for_request(request),
            document_id=path_id(document_id, "document"),
            note_id=path_id(note_id, "note"),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class FileHistoryView(APIView):
    """Who changed which field of a document, from what to what, and when."""

    @extend_schema(operation_id="files_history", tags=["files"], parameters=[DOCUMENT_ID],
                   responses={200: o.FileHistoryOutputSerializer, **ERRORS})  # fmt: skip
    def get(self, request: Request, document_id: str) -> Response:
        document = document_get_for_user(
            viewer=viewer_for_request(request), document_id=path_id(document_id, "document")
        )
        answer = {"file_id": document.pk, "changes": document_history(document=document)}
        return Response(o.FileHistoryOutputSerializer(answer).data)


class TrashView(APIView):
    """The documents in the trash; DELETE empties it now (legal hold stays)."""

    @extend_schema(
        operation_id="trash_list", tags=["trash"], responses={200: o.TrashListOutputSerializer, **ERRORS}
    )
    def get(self, request: Request) -> Response:
        trashed = Document.objects.trashed_visible_to(viewer_for_request(request)).order_by(
            "-trashed_at", "-pk"
        )
        answer = {"results": trashed[:1000], "empty_after_days": settings.EMPTY_TRASH_DELAY}
        return Response(o.TrashListOutputSerializer(answer).data)

    @extend_schema(
        operation_id="trash_empty", tags=["trash"], responses={200: o.TrashEmptiedOutputSerializer, **ERRORS}
    )
    def delete(self, request: Request) -> Response:
        deleted = trash.trash_empty(viewer=viewer_for_request(request), everything=True)
        return Response(o.TrashEmptiedOutputSerializer({"deleted": deleted}).data)


class TrashRestoreView(APIView):
    @extend_schema(operation_id="trash_restore", tags=["trash"], parameters=[DOCUMENT_ID], request=None,
                   responses={200: o.TrashedFileOutputSerializer, **ERRORS})  # fmt: skip
    def post(self, request: Request, document_id: str) -> Response:
        document = trash.document_restore(
            viewer=viewer_for_request(request), document_id=path_id(document_id, "document")
        )
        return Response(o.TrashedFileOutputSerializer({**document.__dict__, "trashed_at": None}).data)


class EntriesView(APIView):
    """One managed list: its entries with document counts; POST adds one."""

    kind_slug = ""

    @extend_schema(responses={200: o.EntryOutputSerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        kind = lists.entry_kind(self.kind_slug)
        entries = lists.entries_available(viewer=viewer_for_request(request), kind=kind)
        return Response(o.EntryOutputSerializer(entries, many=True).data)

    @extend_schema(request=o.EntryInputSerializer, responses={201: o.EntryOutputSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        kind = lists.entry_kind(self.kind_slug)
        data = validated_body(o.EntryInputSerializer, request)
        if "name" not in data:
            raise InvalidInput("An entry needs a name.")
        entry = lists.entry_create(
            viewer=viewer_for_request(request), kind=kind, name=data.pop("name"),
            global_entry=data.pop("is_global"), **data,
        )  # fmt: skip
        return Response(o.EntryOutputSerializer(entry).data, status=status.HTTP_201_CREATED)


class EntryView(APIView):
    """One entry: rename or change it (PATCH), delete it (optionally moving its documents
    to ``?replacement=``)."""

    kind_slug = ""

    @extend_schema(parameters=[ENTRY_ID], responses={200: o.EntryOutputSerializer, **ERRORS})
    def get(self, request: Request, entry_id: str) -> Response:
        kind = lists.entry_kind(self.kind_slug)
        entries = lists.entries_available(viewer=viewer_for_request(request), kind=kind)
        entry = entries.filter(pk=path_id(entry_id, kind.label)).first()
        if entry is None:
            raise NotFound(f"No such {kind.label}.")
        return Response(o.EntryOutputSerializer(entry).data)

    @extend_schema(
        parameters=[ENTRY_ID],
        request=o.EntryInputSerializer,
        responses={200: o.EntryOutputSerializer, **ERRORS},
    )
    def patch(self, request: Request, entry_id: str) -> Response:
        kind = lists.entry_kind(self.kind_slug)
        data = validated_body(o.EntryInputSerializer, request, partial=True)
        data.pop("is_global", None)
        entry = lists.entry_update(
            viewer=viewer_for_request(request),
            kind=kind,
            entry_id=path_id(entry_id, kind.label),
            changes=data,
        )
        return Response(o.EntryOutputSerializer(entry).data)

    @extend_schema(parameters=[ENTRY_ID, o.DeleteEntryInputSerializer], responses={204: None, **ERRORS})
    def delete(self, request: Request, entry_id: str) -> Response:
        kind = lists.entry_kind(self.kind_slug)
        query = validated_query(o.DeleteEntryInputSerializer, request)
        lists.entry_delete(
            viewer=viewer_for_request(request), kind=kind, entry_id=path_id(entry_id, kind.label),
            replacement_id=query.get("replacement"),
        )  # fmt: skip
        return Response(status=status.HTTP_204_NO_CONTENT)


class EntryMergeView(APIView):
    """Merge entries into this one: every document moves over, the others are deleted."""

    kind_slug = ""

    @extend_schema(
        parameters=[ENTRY_ID],
        request=o.MergeInputSerializer,
        responses={200: o.EntryOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, entry_id: str) -> Response:
        kind = lists.entry_kind(self.kind_slug)
        data = validated_body(o.MergeInputSerializer, request)
        viewer = viewer_for_request(request)
        entry = lists.entry_merge(
            viewer=viewer, kind=kind, source_ids=data["sources"], target_id=path_id(entry_id, kind.label)
        )
        counted = lists.entries_available(viewer=viewer, kind=kind).get(pk=entry.pk)
        return Response(o.EntryOutputSerializer(counted).data)
