"""The /files list and the /files/{id} document page, through the Django test client."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.test import Client

from documents import storage
from documents.models import BulkOperation, Document, DocumentStatus, ProcessingStep, StepStatus, Tag
from documents.organise.bulk import bulk_edit_run
from documents.tests.factories import with_entries

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def signed_in(client: Client, owner) -> Client:
    client.force_login(owner)
    return client


def note(ingest, text: str, filename: str, **fields) -> Document:
    """A small text document with the fields a finished pipeline would have given it."""
    # Long enough to be recognised as text; distinct texts, or the second is a duplicate.
    document = ingest(f"This is a note: {text}".encode(), filename)
    tags = fields.pop("tags", [])
    if fields:
        Document.objects.filter(pk=document.pk).update(**with_entries(fields, owner_id=document.owner_id))
    document.tags.set([Tag.objects.get_or_create(name=name)[0] for name in tags])
    return Document.objects.get(pk=document.pk)


def processed(document: Document, content: bytes = PDF) -> Document:
    """Give ``document`` a processed PDF in the storage, as the finalize step would."""
    name = storage.store_bytes(content, f"processed/{document.uuid}.pdf")
    Document.objects.filter(pk=document.pk).update(processed_file=name, status=DocumentStatus.COMPLETED)
    return Document.objects.get(pk=document.pk)


def listed(response) -> list[str]:
    """The file names in the table, in order."""
    return re.findall(r'<a href="/files/\d+">([^<]+)</a>', response.content.decode())


def assert_no_inline_script(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r" on[a-z]+=", html)


# --- The list ------------------------------------------------------------------------------


def test_the_list_asks_an_anonymous_visitor_to_log_in(client):
    response = client.get("/files")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_list_shows_each_document_with_its_details_and_no_inline_script(signed_in, ingest):
    note(ingest, "hello", "invoice.txt", document_title="March invoice", correspondent="ACME GmbH",
         document_type="invoice", tags=["bills"], status=DocumentStatus.FAILED)  # fmt: skip

    response = signed_in.get("/files")

    html = response.content.decode()
    assert response.status_code == 200
    assert listed(response) == ["invoice.txt"]
    for shown in (
        "March invoice",
        "ACME GmbH",
        "invoice",
        "bills",
        "text/plain",
        'data-status="failed"',
        "Failed",
    ):
        assert shown in html
    assert "/static/js/files." in html
    assert_no_inline_script(html)


def test_an_empty_list_says_what_to_do_next(signed_in):
    response = signed_in.get("/files")
    assert "No documents yet" in response.content.decode()
    assert 'href="/upload"' in response.content.decode()


def test_with_multi_user_the_list_shows_only_the_users_own_documents(signed_in, ingest, other_user, settings):
    settings.MULTI_USER_ENABLED = True
    note(ingest, "mine", "mine.txt")
    ingest(b"This is their note.", "theirs.txt", user=other_user)

    assert listed(signed_in.get("/files")) == ["mine.txt"]


def test_the_list_filters_by_search_status_tags_type_and_date(signed_in, ingest):
    note(ingest, "a", "alpha.txt", status=DocumentStatus.COMPLETED, tags=["tax"], correspondent="Finanzamt")
    note(ingest, "b", "beta.txt", status=DocumentStatus.FAILED, tags=["tax", "2024"])
    note(ingest, "c", "gamma.txt")

    assert listed(signed_in.get("/files", {"search": "finanz"})) == ["alpha.txt"]
    assert listed(signed_in.get("/files", {"status": "failed"})) == ["beta.txt"]
    assert sorted(listed(signed_in.get("/files", {"tags": "tax"}))) == ["alpha.txt", "beta.txt"]
    assert listed(signed_in.get("/files", {"tags": "tax, 2024"})) == ["beta.txt"]
    assert len(listed(signed_in.get("/files", {"mime_type": "text/plain"}))) == 3
    assert listed(signed_in.get("/files", {"date_to": "2000-01-01"})) == []
    # Empty form fields, as a browser sends them, are no filter at all.
    assert len(listed(signed_in.get("/files", {"search": "", "date_from": "", "status": ""}))) == 3
    assert "No document matches these filters" in signed_in.get("/files", {"search": "zzz"}).content.decode()


def source_options(html: str) -> list[tuple[str, str]]:
    """The source filter's choices, as (value, label), without "Any"."""
    select = re.search(r'<select id="f-source" name="source"[^>]*>(.*?)</select>', html, re.S)
    assert select, html
    return [
        (value, label)
        for value, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)<', select.group(1))
        if value
    ]


def test_the_source_filter_offers_the_ways_the_users_documents_came_in_and_filters_by_it(
    signed_in, ingest, other_user, settings
):
    settings.MULTI_USER_ENABLED = True
    note(ingest, "uploaded", "uploaded.txt")
    note(ingest, "mailed", "mailed.txt", source="imap", source_ref="scanner@mail.example INBOX/42")
    theirs = ingest(b"This is a note: from their folder", "theirs.txt", user=other_user)
    Document.objects.filter(pk=theirs.pk).update(source="watch")

    page = signed_in.get("/files").content.decode()
    from_mail = signed_in.get("/files", {"source": "imap"})
    from_their_way = signed_in.get("/files", {"source": "watch"})

    # Only the ways their own documents came in: another user's folder is not even named.
    assert source_options(page) == [("imap", "E-mail (IMAP)"), ("upload", "Upload")]
    assert listed(from_mail) == ["mailed.txt"]
    assert '<option value="imap" selected>' in from_mail.content.decode()
    assert "is-open" in filters_panel(from_mail.content.decode())
    assert listed(from_their_way) == []


def test_invalid_filters_are_a_400_page_that_says_so(signed_in):
    response = signed_in.get("/files", {"date_from": "yesterday"})
    assert response.status_code == 400
    assert "Some filters are not valid" in response.content.decode()


def filters_panel(html: str) -> str:
    tag = re.search(r'<form id="file-filters"[^>]*>', html)
    assert tag, html
    return tag.group(0)


def test_the_filters_fold_behind_a_button_on_a_phone_and_start_open_only_when_set(signed_in, ingest):
    note(ingest, "a", "a.txt", status=DocumentStatus.FAILED)

    plain = signed_in.get("/files").content.decode()
    filtered = signed_in.get("/files", {"status": "failed"}).content.decode()
    invalid = signed_in.get("/files", {"date_from": "yesterday"}).content.decode()

    # The stylesheet hides a panel that is not "is-open" on narrow screens (the browser test
    # sees it folded at a phone's width); the button opens it.
    assert "is-open" not in filters_panel(plain)
    assert re.search(
        r'<button [^>]*data-disclosure aria-controls="file-filters" aria-expanded="false"', plain
    )
    assert "is-open" in filters_panel(filtered)
    assert 'aria-controls="file-filters" aria-expanded="true"' in filtered
    assert "is-open" in filters_panel(invalid)  # the filter to correct is in sight


def test_the_list_sorts_by_a_column_both_ways(signed_in, ingest):
    for name in ("b.txt", "c.txt", "a.txt"):
        note(ingest, name, name)

    assert listed(signed_in.get("/files", {"sort_by": "original_filename", "sort_order": "asc"})) == [
        "a.txt", "b.txt", "c.txt"
    ]  # fmt: skip
    response = signed_in.get("/files", {"sort_by": "original_filename", "sort_order": "desc"})
    assert listed(response) == ["c.txt", "b.txt", "a.txt"]
    # The sorted column says so to screen readers and its link turns the order round.
    assert 'aria-sort="descending"' in response.content.decode()
    assert "sort_by=original_filename&amp;sort_order=asc" in response.content.decode()


def test_pages_follow_each_other_and_link_to_the_next(signed_in, ingest):
    for number in range(30):
        note(ingest, str(number), f"n{number:02}.txt")

    first = signed_in.get("/files", {"per_page": 25, "sort_by": "original_filename", "sort_order": "asc"})
    second = signed_in.get(
        "/files", {"per_page": 25, "sort_by": "original_filename", "sort_order": "asc", "page": 2}
    )

    assert listed(first) == [f"n{number:02}.txt" for number in range(25)]
    assert listed(second) == [f"n{number:02}.txt" for number in range(25, 30)]
    assert "Page 1 of 2" in first.content.decode()
    assert "page=2" in first.content.decode()
    assert 'rel="next"' in first.content.decode()
    assert 'rel="next"' not in second.content.decode()


@pytest.mark.parametrize("count", [3, 30])
def test_the_list_costs_the_same_few_queries_for_3_or_30_documents(
    signed_in, ingest, count, django_assert_max_num_queries
):
    for number in range(count):
        note(ingest, str(number), f"n{number}.txt", tags=["a", f"t{number % 3}"])

    # session, user, the source filter's choices, queue counts, count, page, tags, steps, the
    # tags and custom fields (filter and bulk forms alike), and the bulk form's types,
    # correspondents and storage paths.
    with django_assert_max_num_queries(14):
        response = signed_in.get("/files", {"per_page": 50})

    assert len(listed(response)) == count


def test_the_queue_banner_counts_the_users_waiting_and_running_documents(signed_in, ingest):
    note(ingest, "a", "a.txt", status=DocumentStatus.PENDING)
    note(ingest, "b", "b.txt", status=DocumentStatus.PROCESSING)
    note(ingest, "c", "c.txt", status=DocumentStatus.PROCESSING)

    html = signed_in.get("/files").content.decode()

    assert '<strong data-queue="pending">1</strong> waiting' in html
    assert '<strong data-queue="processing">2</strong> being processed' in html


def test_the_status_poll_answers_for_visible_documents_only(signed_in, ingest, other_user, settings):
    settings.MULTI_USER_ENABLED = True
    mine = note(ingest, "a", "a.txt", status=DocumentStatus.PROCESSING)
    theirs = ingest(b"This is their note.", "theirs.txt", user=other_user)

    answer = signed_in.get("/files/status", {"ids": f"{mine.pk},{theirs.pk},junk"}).json()

    assert answer == {
        "documents": [
            {
                "id": mine.pk,
                "status": "processing",
                "label": "Processing",
                "step": None,
                "progress": 0.0,
                "error": "",
            }
        ],
        "queue": {"pending": 0, "processing": 1},
    }


def test_the_status_poll_tells_the_running_step_the_progress_and_a_failures_reason(signed_in, ingest):
    running = note(ingest, "a", "a.txt", status=DocumentStatus.PROCESSING)
    steps = list(running.steps.order_by("position"))
    ProcessingStep.objects.filter(pk=steps[0].pk).update(status=StepStatus.SUCCESS)
    ProcessingStep.objects.filter(pk=steps[1].pk).update(status=StepStatus.IN_PROGRESS)
    broken = note(ingest, "b", "b.txt", status=DocumentStatus.FAILED, error="the OCR step failed")
    ProcessingStep.objects.filter(document=broken, name=steps[1].name).update(
        status=StepStatus.FAILURE, error="tesseract ran out of memory"
    )

    answer = signed_in.get("/files/status", {"ids": f"{running.pk},{broken.pk}"}).json()

    rows = {row["id"]: row for row in answer["documents"]}
    assert rows[running.pk]["step"] == steps[1].name
    assert rows[running.pk]["progress"] == round(1 / len(steps), 2)
    assert rows[running.pk]["error"] == ""
    assert rows[broken.pk]["status"] == "failed"
    assert rows[broken.pk]["error"] == f"{steps[1].name}: tesseract ran out of memory"
    assert rows[broken.pk]["progress"] == round(1 / len(steps), 2)


def test_the_status_poll_costs_the_same_few_queries_for_one_row_or_two_hundred(
    signed_in, ingest, django_assert_max_num_queries
):
    documents = [note(ingest, str(number), f"{number}.txt") for number in range(30)]
    ids = ",".join(str(document.pk) for document in documents)
    # session, user, documents, their steps, queue counts.
    with django_assert_max_num_queries(5):
        answer = signed_in.get("/files/status", {"ids": ids}).json()
    assert len(answer["documents"]) == 30


# --- Bulk actions --------------------------------------------------------------------------


def run_operation(response) -> BulkOperation:
    """The operation a bulk form started, run by its task body here (a worker's job)."""
    operation_id = response["Location"].rstrip("/").split("/")[-1]
    bulk_edit_run(operation_id=operation_id)
    return BulkOperation.objects.get(pk=operation_id)


def test_bulk_reprocess_starts_an_operation_whose_progress_page_shows_it_done(
    signed_in, ingest, sent, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("documents.tasks.bulk_edit_task.delay", lambda operation_id: None)
    first = note(ingest, "a", "a.txt", status=DocumentStatus.FAILED)
    second = note(ingest, "b", "b.txt", status=DocumentStatus.FAILED)
    untouched = note(ingest, "c", "c.txt", status=DocumentStatus.FAILED)

    response = signed_in.post("/files/bulk", {"action": "reprocess", "ids": [first.pk, second.pk]})
    assert response.status_code == 302
    assert response["Location"].startswith("/files/bulk/")
    with django_capture_on_commit_callbacks(execute=True):
        operation = run_operation(response)

    assert sorted(call["args"][0] for call in sent) == [first.pk, second.pk]
    assert Document.objects.get(pk=untouched.pk).status == DocumentStatus.FAILED
    page = signed_in.get(response["Location"]).content.decode()
    assert '<strong data-field="done">2</strong> of <strong data-field="total">2</strong>' in page
    assert_no_inline_script(page)
    status = signed_in.get(f"/files/bulk/{operation.pk}/status").json()
    assert (status["status"], status["done"], status["total"], status["failed"]) == ("done", 2, 2, 0)


def test_bulk_trash_moves_the_selected_documents_to_the_trash(signed_in, ingest, sent, monkeypatch):
    monkeypatch.setattr("documents.tasks.bulk_edit_task.delay", lambda operation_id: None)
    doomed = processed(note(ingest, "a", "a.txt"))
    kept = note(ingest, "b", "b.txt")

    operation = run_operation(signed_in.post("/files/bulk", {"action": "trash", "ids": [doomed.pk]}))

    assert operation.done == 1
    assert Document.objects.get(pk=doomed.pk).trashed_at is not None
    assert storage.exists(doomed.processed_file)  # restorable from the trash
    assert Document.objects.get(pk=kept.pk).trashed_at is None


def test_bulk_actions_ignore_documents_the_user_may_not_see(signed_in, ingest, other_user, sent, settings):
    settings.MULTI_USER_ENABLED = True
    theirs = ingest(b"This is their note.", "theirs.txt", user=other_user)

    response = signed_in.post("/files/bulk", {"action": "trash", "ids": [theirs.pk]}, follow=True)

    assert "No document of yours is selected." in response.content.decode()
    assert Document.objects.get(pk=theirs.pk).trashed_at is None


def test_bulk_trash_reports_a_document_under_legal_hold_and_trashes_the_rest(
    signed_in, ingest, sent, monkeypatch
):
    monkeypatch.setattr("documents.tasks.bulk_edit_task.delay", lambda operation_id: None)
    held = note(ingest, "a", "held.txt", legal_hold=True)
    free = note(ingest, "b", "free.txt")

    response = signed_in.post("/files/bulk", {"action": "trash", "ids": [held.pk, free.pk]})
    run_operation(response)

    page = signed_in.get(response["Location"]).content.decode()
    assert "1</strong> refused" in page
    assert f"Document {held.pk}</a>: The document is under legal hold" in page
    assert list(Document.objects.filter(trashed_at__isnull=True).values_list("pk", flat=True)) == [held.pk]


def test_the_bulk_form_tags_every_result_of_the_filter_not_only_the_page(
    signed_in, ingest, owner, sent, monkeypatch
):
    monkeypatch.setattr("documents.tasks.bulk_edit_task.delay", lambda operation_id: None)
    invoices = [note(ingest, str(n), f"invoice-{n}.txt") for n in range(3)]
    other = note(ingest, "x", "letter.txt")
    paid = Tag.objects.create(owner=owner, name="Paid")
    form = signed_in.get("/files", {"search": "invoice", "per_page": 1}).content.decode()
    assert f'<option value="{paid.pk}">Paid</option>' in form
    assert "All 3 results of this filter" in form

    response = signed_in.post(
        "/files/bulk",
        {"action": "add_tags", "scope": "all", "tag": paid.pk, "return_query": "search=invoice&per_page=1"},
    )
    operation = run_operation(response)

    assert operation.total == 3
    assert sorted(paid.documents.values_list("pk", flat=True)) == [d.pk for d in invoices]
    assert not other.tags.exists()


def test_a_bulk_operation_of_another_user_is_not_found(signed_in, other_user, settings):
    settings.MULTI_USER_ENABLED = True
    theirs = BulkOperation.objects.create(actor=other_user, action="trash", total=1, document_ids=[1])

    assert signed_in.get(f"/files/bulk/{theirs.pk}").status_code == 404
    assert signed_in.get(f"/files/bulk/{theirs.pk}/status").status_code == 404


def test_the_zip_holds_each_selected_documents_processed_pdf_or_else_its_original(signed_in, ingest):
    done = processed(note(ingest, "a", "report.txt"), content=PDF + b"%report")
    waiting = note(ingest, "plain text body", "notes.txt")
    twin = note(ingest, "other body", "notes.txt")

    response = signed_in.post("/files/zip", {"ids": [done.pk, waiting.pk, twin.pk]})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert 'attachment; filename="documents.zip"' in response["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    assert contents == {
        f"{done.uuid}.pdf": PDF + b"%report",
        "notes.txt": b"This is a note: plain text body",
        "notes (2).txt": b"This is a note: other body",
    }


# --- The document page ---------------------------------------------------------------------


def test_the_document_page_shows_fields_text_steps_and_history(signed_in, ingest):
    document = processed(
        note(
            ingest,
            "x",
            "invoice.txt",
            document_title="March invoice",
            correspondent="ACME GmbH",
            ocr_text="Total due: 42,00 EUR",
            tags=["bills"],
            error="",
        )
    )
    ProcessingStep.objects.filter(document=document).update(status=StepStatus.SUCCESS)

    response = signed_in.get(f"/files/{document.pk}")

    html = response.content.decode()
    assert response.status_code == 200
    for shown in (
        "March invoice",
        "ACME GmbH",
        "Total due: 42,00 EUR",
        "bills",
        "convert",
    ):
        assert shown in html
    assert f'<iframe src="/api/files/{document.pk}/preview"' in html
    assert f"/api/files/{document.pk}/download?version=processed" in html
    assert f"/api/files/{document.pk}/download?version=original" in html
    assert "data-confirm=" in html
    assert "Retry" not in html
    assert_no_inline_script(html)


def test_a_failed_step_shows_its_error_and_a_retry_button(signed_in, ingest):
    document = note(ingest, "x", "a.txt", status=DocumentStatus.FAILED)
    ProcessingStep.objects.filter(document=document, name="convert").update(status=StepStatus.SUCCESS)
    ProcessingStep.objects.filter(document=document, name="ocr").update(
        status=StepStatus.FAILURE, error="tesseract is not installed"
    )

    html = signed_in.get(f"/files/{document.pk}").content.decode()

    assert "tesseract is not installed" in html
    assert "Retry ocr" in html
    assert "No PDF to show yet" in html


def test_retrying_a_failed_step_queues_it_again(signed_in, ingest, sent, django_capture_on_commit_callbacks):
    document = note(ingest, "x", "a.txt", status=DocumentStatus.FAILED)
    ProcessingStep.objects.filter(document=document, name="convert").update(status=StepStatus.SUCCESS)
    ProcessingStep.objects.filter(document=document, name="ocr").update(
        status=StepStatus.FAILURE, error="boom"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"/files/{document.pk}/retry", {"step": "ocr"}, follow=True)

    assert "The ocr step is queued again." in response.content.decode()
    assert sent[0]["args"] == (document.pk, "ocr")
    assert ProcessingStep.objects.get(document=document, name="ocr").status == StepStatus.PENDING


def test_a_refused_retry_is_a_message_not_an_error_page(signed_in, ingest, sent):
    document = note(ingest, "x", "a.txt")

    response = signed_in.post(f"/files/{document.pk}/retry", {"step": "embed_metadata"}, follow=True)

    assert response.status_code == 200
    assert "has not succeeded yet; retry that step first." in response.content.decode()
    assert sent == []


def test_deleting_from_the_document_page_moves_it_to_the_trash_with_a_link_to_restore_it(
    signed_in, ingest, sent, django_capture_on_commit_callbacks
):
    document = processed(note(ingest, "x", "a.txt"))

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"/files/{document.pk}/delete", follow=True)

    html = response.content.decode()
    assert response.redirect_chain[-1][0] == "/files"
    assert f'a.txt was moved to the trash. <a href="/trash#trashed-{document.pk}">Restore it</a>' in html
    assert Document.objects.get(pk=document.pk).trashed_at is not None
    assert signed_in.get(f"/files/{document.pk}").status_code == 404
    assert storage.exists(document.processed_file)
    assert storage.exists(document.original_file)


def test_another_users_document_is_a_404_to_read_retry_or_delete(
    signed_in, ingest, other_user, settings, sent
):
    settings.MULTI_USER_ENABLED = True
    theirs = ingest(b"This is their note.", "theirs.txt", user=other_user)

    assert signed_in.get(f"/files/{theirs.pk}").status_code == 404
    assert signed_in.post(f"/files/{theirs.pk}/retry", {"step": "ocr"}).status_code == 404
    assert signed_in.post(f"/files/{theirs.pk}/delete").status_code == 404
    assert Document.objects.get(pk=theirs.pk).trashed_at is None
    assert "Traceback" not in signed_in.get("/files/999999").content.decode()


def test_changes_need_a_post(signed_in, ingest):
    document = note(ingest, "x", "a.txt")
    assert signed_in.get(f"/files/{document.pk}/delete").status_code == 405
    assert signed_in.get("/files/bulk").status_code == 405


# --- Framing of the preview ----------------------------------------------------------------


@pytest.fixture
def with_security_headers(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "csp.middleware.CSPMiddleware"]


def test_the_preview_may_be_framed_by_the_site_itself_while_pages_may_not(
    signed_in, ingest, with_security_headers
):
    document = processed(note(ingest, "x", "a.txt"))

    preview = signed_in.get(f"/api/files/{document.pk}/preview")
    page = signed_in.get(f"/files/{document.pk}")

    assert preview.status_code == 200
    assert preview["Content-Disposition"].startswith("inline")
    assert preview["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in preview["Content-Security-Policy"]
    # The preview's own sandboxed policy, not the site's (which would let a document's script run).
    assert "sandbox" in [part.strip() for part in preview["Content-Security-Policy"].split(";")]
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    assert "frame-src 'self'" in page["Content-Security-Policy"]
