"""Routes of the documents pages, at the site's root."""

from __future__ import annotations

from django.urls import URLPattern, path, register_converter

from docuelevate.bounds import register_id_converter
from documents.organise.lists import KINDS
from documents.pages import files, lists, review, trash
from documents.pages.dashboard import dashboard
from documents.pages.upload import upload_page

register_id_converter()


class ListConverter:
    """The slug of one of the managed lists (/organise/tags, …): any other is no route."""

    regex = "|".join(KINDS)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ListConverter, "list")

urlpatterns: list[URLPattern] = [
    path("", dashboard, name="dashboard"),
    path("upload", upload_page, name="upload"),
    path("files", files.files_page, name="files"),
    path("files/status", files.files_status, name="files-status"),
    path("files/bulk", files.files_bulk, name="files-bulk"),
    path("files/zip", files.files_zip, name="files-zip"),
    path("files/bulk/<uuid:operation_id>", files.files_bulk_progress, name="files-bulk-progress"),
    path("files/bulk/<uuid:operation_id>/status", files.files_bulk_status, name="files-bulk-status"),
    path("files/<id:document_id>", files.file_detail, name="file-detail"),
    path("files/<id:document_id>/thumbnail", files.file_thumbnail, name="file-thumbnail"),
    path("files/<id:document_id>/retry", files.file_retry, name="file-retry"),
    path("files/<id:document_id>/delete", files.file_delete, name="file-delete"),
    path("files/<id:document_id>/redeliver", files.file_redeliver, name="file-redeliver"),
    # The managed lists (documents.pages.lists)
    path("organise", lists.organise_page, name="organise"),
    path("organise/<list:slug>", lists.organise_list, name="organise-list"),
    path("organise/<list:slug>/<id:entry_id>", lists.organise_entry, name="organise-entry"),
    path("organise/<list:slug>/<id:entry_id>/merge", lists.organise_entry_merge, name="organise-entry-merge"),
    path(
        "organise/<list:slug>/<id:entry_id>/delete", lists.organise_entry_delete, name="organise-entry-delete"
    ),
    # The document page's edit form, notes, and the trash.
    path("files/<id:document_id>/edit", files.file_edit, name="file-edit"),
    path("files/<id:document_id>/notes", files.file_note_add, name="file-note-add"),
    path("files/<id:document_id>/notes/<id:note_id>/delete", files.file_note_delete, name="file-note-delete"),
    path("trash", trash.trash_page, name="trash"),
    path("trash/empty", trash.trash_empty_now, name="trash-empty"),
    path("trash/<id:document_id>/restore", trash.trash_restore, name="trash-restore"),
    path("review", review.review_page, name="review"),
    path("review/<id:document_id>", review.review_confirm, name="review-confirm"),
]
