"""The dashboard at /: counts by status, recent documents, failures, and the empty state."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from documents.models import Document, DocumentStatus
from documents.tests.factories import DocumentFactory

pytestmark = pytest.mark.django_db


def make_document(owner: User, name: str, status: str = DocumentStatus.COMPLETED, **fields: Any) -> Document:
    return DocumentFactory.create(owner=owner, original_filename=name, status=status, **fields)


def page_for(client: Client, user: User) -> str:
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def count_shown(html: str, status: str) -> int:
    match = re.search(rf'data-status="{status}">(\d+)<', html)
    assert match, f"no count for {status}"
    return int(match.group(1))


def test_a_new_user_is_invited_to_upload_their_first_document(client, owner):
    html = page_for(client, owner)
    assert "No documents yet" in html
    assert 'href="/upload">Upload your first document</a>' in html
    assert "Recent documents" not in html


def test_the_counts_show_how_many_documents_are_in_each_status(client, owner):
    for number in range(3):
        make_document(owner, f"done-{number}.pdf")
    make_document(owner, "waiting.pdf", DocumentStatus.PENDING)
    make_document(owner, "broken.pdf", DocumentStatus.FAILED, error="tesseract ran out of memory")
    html = page_for(client, owner)
    assert count_shown(html, "all") == 5
    assert count_shown(html, "completed") == 3
    assert count_shown(html, "pending") == 1
    assert count_shown(html, "failed") == 1
    assert count_shown(html, "processing") == 0
    assert 'href="/files?status=failed"' in html


def test_the_ten_newest_documents_are_listed_newest_first_with_links(client, owner):
    documents = [make_document(owner, f"scan-{number:02d}.pdf") for number in range(12)]
    html = page_for(client, owner)
    recent = html.split("Recent documents", 1)[1]
    assert "scan-11.pdf" in recent
    assert "scan-02.pdf" in recent
    assert "scan-01.pdf" not in recent
    assert "scan-00.pdf" not in recent
    assert recent.index("scan-11.pdf") < recent.index("scan-05.pdf")
    assert f'href="/files/{documents[-1].pk}"' in recent


def test_a_document_with_a_title_is_listed_by_its_title(client, owner):
    make_document(owner, "scan-0042.pdf", document_title="Electricity bill March")
    html = page_for(client, owner)
    assert "Electricity bill March" in html


def test_failed_documents_need_attention_with_their_reason_and_a_link(client, owner):
    broken = make_document(owner, "broken.pdf", DocumentStatus.FAILED, error="tesseract ran out of memory")
    make_document(owner, "fine.pdf")
    html = page_for(client, owner)
    attention = html.split("Needs attention", 1)[1].split("Recent documents", 1)[0]
    assert "1 failed" in attention
    assert f'href="/files/{broken.pk}">broken.pdf</a>' in attention
    assert "tesseract ran out of memory" in attention
    assert "fine.pdf" not in attention


def test_without_failures_there_is_no_attention_box(client, owner):
    make_document(owner, "fine.pdf")
    assert "Needs attention" not in page_for(client, owner)


def test_with_multi_user_a_user_sees_only_their_own_documents(client, settings, owner, other_user):
    settings.MULTI_USER_ENABLED = True
    make_document(owner, "mine.pdf")
    make_document(other_user, "theirs.pdf", DocumentStatus.FAILED, error="secret reason")
    html = page_for(client, owner)
    assert "mine.pdf" in html
    assert "theirs.pdf" not in html
    assert "secret reason" not in html
    assert count_shown(html, "all") == 1
    assert count_shown(html, "failed") == 0


def test_with_multi_user_an_operator_sees_everyones_documents(client, settings, owner, operator):
    settings.MULTI_USER_ENABLED = True
    make_document(owner, "mine.pdf")
    html = page_for(client, operator)
    assert "mine.pdf" in html


def test_the_dashboard_needs_a_fixed_number_of_queries_however_many_documents(
    client, owner, django_assert_max_num_queries
):
    for number in range(30):
        make_document(owner, f"ok-{number}.pdf")
        make_document(owner, f"bad-{number}.pdf", DocumentStatus.FAILED, error="boom")
    client.force_login(owner)
    # session + user, one aggregate for the counts, the recent list, the failed list.
    with django_assert_max_num_queries(6):
        response = client.get("/")
    assert response.status_code == 200
    assert "All 30 failed documents" in response.content.decode()


def test_the_page_has_no_inline_script_or_event_handler(client, owner):
    make_document(owner, "broken.pdf", DocumentStatus.FAILED, error="boom")
    html = page_for(client, owner)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r" on[a-z]+=", html)


def test_the_header_links_every_page_and_skips_to_the_content(client, owner, operator):
    html = page_for(client, owner)
    for path in ("/upload", "/files", "/search", "/api-tokens"):
        assert f'href="{path}"' in html
    assert 'href="#content"' in html
    assert 'id="content"' in html
    assert 'aria-current="page">Dashboard' in html
    assert 'href="/status"' not in html
    assert 'href="/admin/"' not in html
    staff_html = page_for(client, operator)
    assert 'href="/status"' in staff_html
    assert 'href="/admin/"' in staff_html


def test_an_anonymous_visitor_sees_no_documents_only_a_way_to_log_in(client, owner):
    make_document(owner, "mine.pdf")
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Log in" in html
    assert "mine.pdf" not in html
    assert "Recent documents" not in html
