"""Every public route keeps its name and its path, wherever its view and URL module live.

Clients (the CLI, the mobile app, the browser extension, scrapers, probes) call the paths;
templates and redirects use the names. Moving code between modules must change neither.
"""

from __future__ import annotations

import pytest
from django.urls import resolve, reverse

# name, the route's arguments, its path
ROUTES: list[tuple[str, dict[str, object], str]] = [
    # Wiring (docuelevate.urls)
    ("admin-login", {}, "/admin/login/"),
    ("admin:index", {}, "/admin/"),
    ("api-schema", {}, "/api/schema/"),
    ("api-docs", {}, "/api/docs/"),
    ("csp-report", {}, "/api/csp-report"),
    ("favicon", {}, "/favicon.ico"),
    # ops: probes, health, metrics, the status page
    ("healthz-live", {}, "/api/diagnostic/healthz/live"),
    ("healthz-ready", {}, "/api/diagnostic/healthz/ready"),
    ("health", {}, "/api/diagnostic/health"),
    ("health-short", {}, "/api/health"),
    ("metrics", {}, "/metrics"),
    ("status", {}, "/status"),
    ("status-retry", {"document_id": 7}, "/status/documents/7/retry"),
    # accounts: sign-in, single sign-on, tokens
    ("account_login", {}, "/accounts/login/"),
    ("account_logout", {}, "/accounts/logout/"),
    ("account_change_password", {}, "/accounts/password/change/"),
    ("account_reset_password", {}, "/accounts/password/reset/"),
    ("oidc_authentication_init", {}, "/accounts/oidc/authenticate/"),
    ("oidc_authentication_callback", {}, "/accounts/oidc/callback/"),
    ("oidc_logout", {}, "/accounts/oidc/logout/"),
    ("api-tokens", {}, "/api-tokens"),
    ("api-token-revoke", {"token_id": 7}, "/api-tokens/7/revoke"),
    ("api-token-list", {}, "/api/api-tokens/"),
    ("api-token-detail", {"token_id": "7"}, "/api/api-tokens/7"),
    ("whoami", {}, "/api/whoami"),
    ("mobile-whoami", {}, "/api/mobile/whoami"),
    ("mobile-generate-token", {}, "/api/mobile/generate-token"),
    # documents
    ("dashboard", {}, "/"),
    ("upload", {}, "/upload"),
    ("files", {}, "/files"),
    ("files-status", {}, "/files/status"),
    ("files-bulk", {}, "/files/bulk"),
    ("files-zip", {}, "/files/zip"),
    # bulk edit
    (
        "files-bulk-progress",
        {"operation_id": "0b7e4c1a-5d2f-4a8e-9c3b-1f2e3d4c5b6a"},
        "/files/bulk/0b7e4c1a-5d2f-4a8e-9c3b-1f2e3d4c5b6a",
    ),
    (
        "files-bulk-status",
        {"operation_id": "0b7e4c1a-5d2f-4a8e-9c3b-1f2e3d4c5b6a"},
        "/files/bulk/0b7e4c1a-5d2f-4a8e-9c3b-1f2e3d4c5b6a/status",
    ),
    ("api-files-bulk-edit", {}, "/api/files/bulk-edit"),
    (
        "api-bulk-operation",
        {"operation_id": "0b7e4c1a-5d2f-4a8e-9c3b-1f2e3d4c5b6a"},
        "/api/bulk-operations/0b7e4c1a-5d2f-4a8e-9c3b-1f2e3d4c5b6a",
    ),
    ("file-detail", {"document_id": 7}, "/files/7"),
    ("file-retry", {"document_id": 7}, "/files/7/retry"),
    ("file-delete", {"document_id": 7}, "/files/7/delete"),
    ("file-redeliver", {"document_id": 7}, "/files/7/redeliver"),
    ("file-thumbnail", {"document_id": 7}, "/files/7/thumbnail"),
    # the document page's edit form and notes, the trash
    ("file-edit", {"document_id": 7}, "/files/7/edit"),
    ("file-note-add", {"document_id": 7}, "/files/7/notes"),
    ("file-note-delete", {"document_id": 7, "note_id": 8}, "/files/7/notes/8/delete"),
    ("trash", {}, "/trash"),
    ("trash-empty", {}, "/trash/empty"),
    ("trash-restore", {"document_id": 7}, "/trash/7/restore"),
    ("api-ui-upload", {}, "/api/ui-upload"),
    ("api-files-upload", {}, "/api/files/upload"),
    ("api-process-url", {}, "/api/process-url"),
    ("api-files", {}, "/api/files"),
    ("api-file", {"document_id": "7"}, "/api/files/7"),
    ("api-file-download", {"document_id": "7"}, "/api/files/7/download"),
    ("api-file-preview", {"document_id": "7"}, "/api/files/7/preview"),
    ("api-file-thumbnail", {"document_id": "7"}, "/api/files/7/thumbnail"),
    ("api-file-reprocess", {"document_id": "7"}, "/api/files/7/reprocess"),
    ("api-file-retry-subtask", {"document_id": "7"}, "/api/files/7/retry-subtask"),
    ("api-file-redeliver", {"document_id": "7"}, "/api/files/7/redeliver"),
    ("api-file-logs", {"document_id": "7"}, "/api/logs/file/7"),
    ("api-queue-stats", {}, "/api/queue/stats"),
    # documents: the managed lists' pages
    ("organise", {}, "/organise"),
    ("organise-list", {"slug": "tags"}, "/organise/tags"),
    ("organise-list", {"slug": "document-types"}, "/organise/document-types"),
    ("organise-list", {"slug": "correspondents"}, "/organise/correspondents"),
    ("organise-list", {"slug": "storage-paths"}, "/organise/storage-paths"),
    ("organise-list", {"slug": "custom-fields"}, "/organise/custom-fields"),
    ("organise-entry", {"slug": "tags", "entry_id": 7}, "/organise/tags/7"),
    ("organise-entry-merge", {"slug": "tags", "entry_id": 7}, "/organise/tags/7/merge"),
    ("organise-entry-delete", {"slug": "correspondents", "entry_id": 7}, "/organise/correspondents/7/delete"),
    # destinations
    ("destinations", {}, "/destinations"),
    ("destination-new", {}, "/destinations/new"),
    ("destination-edit", {"destination_id": 7}, "/destinations/7"),
    ("destination-test", {"destination_id": 7}, "/destinations/7/test"),
    ("destination-remove", {"destination_id": 7}, "/destinations/7/remove"),
    ("api-destinations", {}, "/api/destinations"),
    ("api-destination", {"destination_id": 7}, "/api/destinations/7"),
    ("api-destination-test", {"destination_id": 7}, "/api/destinations/7/test"),
    # sources
    ("api-sources", {}, "/api/sources"),
    ("api-source", {"source_id": 7}, "/api/sources/7"),
    ("api-source-test", {"source_id": 7}, "/api/sources/7/test"),
    ("api-source-poll", {"source_id": 7}, "/api/sources/7/poll"),
    # search
    ("search", {}, "/search"),
    ("search-save", {}, "/search/save"),
    ("api-search", {}, "/api/search"),
    ("api-saved-searches", {}, "/api/saved-searches"),
    ("api-saved-search", {"saved_search_id": 7}, "/api/saved-searches/7"),
    # destinations: connecting a cloud drive (the callbacks are registered with the providers)
    ("destination-connect", {"destination_id": 7}, "/destinations/7/connect"),
    ("destination-connect-callback", {"kind": "dropbox"}, "/destinations/connect/dropbox/callback"),
    ("destination-connect-callback", {"kind": "google_drive"}, "/destinations/connect/google_drive/callback"),
    ("destination-connect-callback", {"kind": "onedrive"}, "/destinations/connect/onedrive/callback"),
    # sources: the pages
    ("sources", {}, "/sources"),
    ("source-new", {}, "/sources/new"),
    ("source-edit", {"source_id": 7}, "/sources/7"),
    ("source-test", {"source_id": 7}, "/sources/7/test"),
    ("source-poll", {"source_id": 7}, "/sources/7/poll"),
    ("source-remove", {"source_id": 7}, "/sources/7/remove"),
    # documents: the review inbox
    ("review", {}, "/review"),
    ("review-confirm", {"document_id": 7}, "/review/7"),
    ("api-review", {}, "/api/review"),
    ("api-file-review", {"document_id": "7"}, "/api/files/7/review"),
]

# The other spelling of each accounts API route answers too (accounts.api.urls), unnamed.
OTHER_SPELLINGS = [
    ("/api/api-tokens", "api-token-list"),
    ("/api/api-tokens/7/", "api-token-detail"),
    ("/api/whoami/", "whoami"),
    ("/api/mobile/whoami/", "mobile-whoami"),
    ("/api/mobile/generate-token/", "mobile-generate-token"),
]


@pytest.mark.parametrize(("name", "kwargs", "expected"), ROUTES, ids=[route[0] for route in ROUTES])
def test_each_route_keeps_its_name_and_path(name, kwargs, expected):
    assert reverse(name, kwargs=kwargs) == expected
    assert resolve(expected).view_name == name


@pytest.mark.parametrize(("other", "name"), OTHER_SPELLINGS)
def test_the_other_spelling_of_an_accounts_api_route_reaches_the_same_view(other, name):
    named = resolve(reverse(name, kwargs={"token_id": "7"} if name == "api-token-detail" else {}))
    # The unlisted spelling is a subclass that only hides itself from the schema.
    assert issubclass(resolve(other).func.view_class, named.func.view_class)  # type: ignore[attr-defined]  # set by as_view()
