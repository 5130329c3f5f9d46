"""Routes of the documents pages, at the site's root."""

from __future__ import annotations

from django.urls import URLPattern, path

from docuelevate.bounds import register_id_converter
from documents.pages import files, trash
from documents.pages.dashboard import dashboard
from documents.pages.upload import upload_page

register_id_converter()

urlpatterns: list[URLPattern] = [
    path("", dashboard, name="dashboard"),
    path("upload", upload_page, name="upload"),
    path("files", files.files_page, name="files"),
    path("files/status", files.files_status, name="files-status"),
    path("files/bulk", files.files_bulk, name="files-bulk"),
    path("files/zip", files.files_zip, name="files-zip"),
    path("files/<id:document_id>", files.file_detail, name="file-detail"),
    path("files/<id:document_id>/thumbnail", files.file_thumbnail, name="file-thumbnail"),
    path("files/<id:document_id>/retry", files.file_retry, name="file-retry"),
    path("files/<id:document_id>/delete", files.file_delete, name="file-delete"),
    path("files/<id:document_id>/redeliver", files.file_redeliver, name="file-redeliver"),
    # The document page's edit form, notes, and the trash.
    path("files/<id:document_id>/edit", files.file_edit, name="file-edit"),
    path("files/<id:document_id>/notes", files.file_note_add, name="file-note-add"),
    path("files/<id:document_id>/notes/<id:note_id>/delete", files.file_note_delete, name="file-note-delete"),
    path("trash", trash.trash_page, name="trash"),
    path("trash/empty", trash.trash_empty_now, name="trash-empty"),
    path("trash/<id:document_id>/restore", trash.trash_restore, name="trash-restore"),
]
