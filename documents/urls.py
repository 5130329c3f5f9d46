"""Pages of the documents app."""

from __future__ import annotations

from django.urls import path

from docuelevate.bounds import register_id_converter
from documents import views
from documents.pages import files
from documents.pages.upload import upload_page

register_id_converter()

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("upload", upload_page, name="upload"),
    # /files and /files/{id} (documents.pages.files)
    path("files", files.files_page, name="files"),
    path("files/status", files.files_status, name="files-status"),
    path("files/bulk", files.files_bulk, name="files-bulk"),
    path("files/zip", files.files_zip, name="files-zip"),
    path("files/<id:document_id>", files.file_detail, name="file-detail"),
    path("files/<id:document_id>/retry", files.file_retry, name="file-retry"),
    path("files/<id:document_id>/delete", files.file_delete, name="file-delete"),
]
