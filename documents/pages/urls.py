"""Routes of the documents pages, at the site's root."""

from __future__ import annotations

from django.urls import URLPattern, path

from docuelevate.bounds import register_id_converter
from documents.pages import files, review
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
    path("review", review.review_page, name="review"),
    path("review/<id:document_id>", review.review_confirm, name="review-confirm"),
]
