"""Routes of the documents API under /api/ (the paths existing clients call, CONTRACT.md §3)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from documents.api import bulk_views, organise_views, review_views, views
from documents.organise.lists import KINDS

urlpatterns: list[URLPattern | URLResolver] = [
    path("ui-upload", views.UploadView.as_view(), name="api-ui-upload"),
    path("files/upload", views.ExtensionUploadView.as_view(), name="api-files-upload"),
    path("process-url", views.ProcessUrlView.as_view(), name="api-process-url"),
    path("files", views.FileListView.as_view(), name="api-files"),
    # Bulk edit: before files/<id>, which would take "bulk-edit" for an id.
    path("files/bulk-edit", bulk_views.BulkEditView.as_view(), name="api-files-bulk-edit"),
    path(
        "bulk-operations/<str:operation_id>",
        bulk_views.BulkOperationView.as_view(),
        name="api-bulk-operation",
    ),
    path("files/<str:document_id>", views.FileDetailView.as_view(), name="api-file"),
    path("files/<str:document_id>/download", views.FileDownloadView.as_view(), name="api-file-download"),
    path("files/<str:document_id>/preview", views.FilePreviewView.as_view(), name="api-file-preview"),
    path("files/<str:document_id>/thumbnail", views.FileThumbnailView.as_view(), name="api-file-thumbnail"),
    path("files/<str:document_id>/reprocess", views.FileReprocessView.as_view(), name="api-file-reprocess"),
    path(
        "files/<str:document_id>/retry-subtask",
        views.FileRetrySubtaskView.as_view(),
        name="api-file-retry-subtask",
    ),
    path("files/<str:document_id>/redeliver", views.FileRedeliverView.as_view(), name="api-file-redeliver"),
    path("logs/file/<str:document_id>", views.FileLogsView.as_view(), name="api-file-logs"),
    path("queue/stats", views.QueueStatsView.as_view(), name="api-queue-stats"),
    path("files/<str:document_id>/notes", organise_views.FileNotesView.as_view(), name="api-file-notes"),
    path(
        "files/<str:document_id>/notes/<str:note_id>",
        organise_views.FileNoteView.as_view(),
        name="api-file-note",
    ),
    path(
        "files/<str:document_id>/history", organise_views.FileHistoryView.as_view(), name="api-file-history"
    ),
    path("review", review_views.ReviewQueueView.as_view(), name="api-review"),
    path("files/<str:document_id>/review", review_views.FileReviewView.as_view(), name="api-file-review"),
    path("trash", organise_views.TrashView.as_view(), name="api-trash"),
    path(
        "trash/<str:document_id>/restore", organise_views.TrashRestoreView.as_view(), name="api-trash-restore"
    ),
]
# The managed lists, one set of routes each: /api/tags, /api/tags/{id}, /api/tags/{id}/merge, …
for _slug in KINDS:
    urlpatterns += [
        path(_slug, organise_views.EntriesView.as_view(kind_slug=_slug), name=f"api-{_slug}"),
        path(
            f"{_slug}/<str:entry_id>",
            organise_views.EntryView.as_view(kind_slug=_slug),
            name=f"api-{_slug}-entry",
        ),
        path(
            f"{_slug}/<str:entry_id>/merge",
            organise_views.EntryMergeView.as_view(kind_slug=_slug),
            name=f"api-{_slug}-merge",
        ),
    ]
