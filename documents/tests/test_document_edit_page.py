"""The document page's edit form, its conflict view, notes and history, through the Django
test client, for the owner, another user and an operator."""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client

from accounts.access import Viewer
from documents.models import (
    ChangeOrigin,
    Correspondent,
    CustomField,
    CustomFieldValue,
    Document,
    DocumentChange,
    DocumentStatus,
    DocumentType,
    Note,
    StepStatus,
    Tag,
)
from documents.tests.factories import DocumentFactory
from search.selectors import search

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _multi_user(settings, sent) -> None:
    settings.MULTI_USER_ENABLED = True


def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def letter(ingest) -> Document:
    """A document as extraction left it, with no processed PDF (so an edit refiles nothing)."""
    document = ingest(b"Dear customer, your invoice is attached. Regards, ACME", "letter.txt")
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.COMPLETED, document_title="Scan 001", language="en"
    )
    document.steps.update(status=StepStatus.SUCCESS)
    return Document.objects.get(pk=document.pk)


def form_of(document: Document, **changes) -> dict[str, object]:
    """What the page's form posts for ``document`` as stored, with ``changes`` typed in."""
    data: dict[str, object] = {
        "version": document.version,
        "document_title": document.document_title,
        "document_type": document.document_type_id or "",
        "correspondent": document.correspondent_id or "",
        "document_date": document.document_date.isoformat() if document.document_date else "",
        "tags": [tag.pk for tag in document.tags.all()],
        "language": document.language,
        "storage_path": document.storage_path_id or "",
    }
    data.update(changes)
    return data


def save(client: Client, document: Document, data: dict[str, object], **kwargs):
    return client.post(f"/files/{document.pk}/edit", data, **kwargs)


def history_rows(html: str) -> list[str]:
    """The history table's rows as text, one per change."""
    section = html.split('id="changes-title"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr data-field=[^>]*>(.*?)</tr>", section, flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


# --- The form ------------------------------------------------------------------------------


def test_the_page_shows_the_form_with_the_stored_values_the_owners_and_global_entries_and_tag_colours(
    client, owner, other_user, letter
):
    own_tag = Tag.objects.create(name="bills", colour="#ff8800", owner=owner)
    Tag.objects.create(name="shared", colour="#0044cc")
    Tag.objects.create(name="their-tag", owner=other_user)
    letter.tags.add(own_tag)
    Correspondent.objects.create(name="Their Bank", owner=other_user)

    html = signed_in(client, owner).get(f"/files/{letter.pk}").content.decode()

    assert 'name="document_title" value="Scan 001"' in html
    assert f'name="version" value="{letter.version}"' in html
    assert "background-color: #ff8800" in html
    assert "background-color: #0044cc" in html
    assert re.search(rf'<input type="checkbox" name="tags" value="{own_tag.pk}"[^>]*checked', html)
    # Global entries are offered as such; another user's entries not at all.
    assert "Invoice (global)" in html
    assert "their-tag" not in html
    assert "Their Bank" not in html
    # Every input is labelled, and no script is written into the page.
    inputs = re.findall(r'<(?:input(?![^>]*type="hidden")|select|textarea)[^>]*\bid="(id_[^"]+)"', html)
    assert len(inputs) > 8
    for input_id in inputs:
        assert f'for="{input_id}"' in html, input_id
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)


def test_saving_the_form_changes_the_document_shows_the_new_values_and_a_history_row(
    client, owner, letter, django_capture_on_commit_callbacks
):
    invoice = DocumentType.objects.get(name="Invoice", owner=None)
    tag = Tag.objects.create(name="bills", colour="#ff8800", owner=owner)
    page = signed_in(client, owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = save(
            page, letter,
            form_of(letter, document_title="Electricity bill March", document_type=invoice.pk,
                    document_date="2024-03-12", tags=[tag.pk]),
            follow=True,
        )  # fmt: skip

    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/files/{letter.pk}#edit-title"
    assert "Saved." in html
    assert 'name="document_title" value="Electricity bill March"' in html
    stored = Document.objects.get(pk=letter.pk)
    assert (stored.document_title, stored.document_type, stored.document_date) == (
        "Electricity bill March", invoice, datetime.date(2024, 3, 12)
    )  # fmt: skip
    assert list(stored.tags.all()) == [tag]
    assert stored.version == letter.version + 1
    # Only what was changed became the person's: reprocessing keeps exactly these.
    assert stored.user_fields == ["document_date", "document_title", "document_type", "tags"]
    assert DocumentChange.objects.filter(document=letter, origin=ChangeOrigin.PAGE).count() == 4
    assert "Title Scan 001 → Electricity bill March" in " | ".join(history_rows(html))
    assert "owner (page)" in " | ".join(history_rows(html))
    assert search(viewer=Viewer(user=owner), query="Electricity").total == 1


def test_saving_an_untouched_form_changes_nothing(client, owner, letter):
    response = save(signed_in(client, owner), letter, form_of(letter), follow=True)

    assert "Nothing to save" in response.content.decode()
    assert Document.objects.get(pk=letter.pk).version == letter.version
    assert not DocumentChange.objects.filter(document=letter).exists()


def test_a_value_the_service_refuses_is_shown_beside_its_field_and_what_was_typed_is_kept(
    client, owner, letter
):
    page = signed_in(client, owner)

    response = save(page, letter, form_of(letter, language="not a code!"))

    html = response.content.decode()
    assert response.status_code == 400
    assert 'value="not a code!"' in html
    beside = html.split('for="id_language"', 1)[1].split('<div class="field', 1)[0]
    assert "language takes a language code such as en, de or fr." in beside
    assert Document.objects.get(pk=letter.pk).language == "en"

    # With several fields changed the refusal cannot name one: it heads the form, and
    # everything typed stays.
    response = save(page, letter, form_of(letter, document_title="Kept title", language="not a code!"))

    html = response.content.decode()
    assert re.search(r'class="message error[^"]*" role="alert">language takes a language code', html)
    assert 'name="document_title" value="Kept title"' in html
    assert 'value="not a code!"' in html
    assert Document.objects.get(pk=letter.pk).document_title == "Scan 001"


def test_an_empty_title_and_a_malformed_date_are_refused_field_by_field(client, owner, letter):
    response = save(
        signed_in(client, owner), letter, form_of(letter, document_title="", document_date="12/03")
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "This field is required." in html
    assert "Enter a valid date." in html
    assert Document.objects.get(pk=letter.pk).version == letter.version


def test_custom_fields_get_typed_inputs_and_their_values_are_saved(client, owner, letter):
    fields = {
        kind: CustomField.objects.create(name=f"My {kind}", data_type=kind, owner=owner, **extra)
        for kind, extra in (
            ("date", {}), ("integer", {}), ("boolean", {}), ("url", {}), ("long_text", {}),
            ("monetary", {"default_currency": "EUR"}), ("select", {"options": ["paid", "open"]}),
            ("document_link", {}),
        )
    }  # fmt: skip
    page = signed_in(client, owner)
    html = page.get(f"/files/{letter.pk}").content.decode()
    assert f'type="date" name="cf_{fields["date"].pk}"' in html
    assert f'type="number" name="cf_{fields["integer"].pk}"' in html
    assert f'type="checkbox" name="cf_{fields["boolean"].pk}"' in html
    assert f'type="url" name="cf_{fields["url"].pk}"' in html
    assert f'<textarea name="cf_{fields["long_text"].pk}"' in html
    assert f'name="cf_{fields["monetary"].pk}_0"' in html
    assert f'name="cf_{fields["monetary"].pk}_1"' in html
    assert f'<select name="cf_{fields["select"].pk}"' in html
    other = DocumentFactory.create(owner=owner)

    response = save(
        page, letter,
        form_of(letter, **{
            f"cf_{fields['date'].pk}": "2025-01-31", f"cf_{fields['integer'].pk}": "42",
            f"cf_{fields['boolean'].pk}": "on", f"cf_{fields['url'].pk}": "https://example.org/a",
            f"cf_{fields['long_text'].pk}": "Line one\nLine two",
            f"cf_{fields['monetary'].pk}_0": "12.5", f"cf_{fields['monetary'].pk}_1": "",
            f"cf_{fields['select'].pk}": "paid", f"cf_{fields['document_link'].pk}": str(other.pk),
        }),
    )  # fmt: skip

    assert response.status_code == 302, response.content.decode()
    values = {
        value.field.data_type: value
        for value in CustomFieldValue.objects.filter(document=letter).select_related("field")
    }
    assert values["date"].value_date == datetime.date(2025, 1, 31)
    assert values["integer"].value_int == 42
    assert values["boolean"].value_bool is True
    assert values["url"].value_text == "https://example.org/a"
    assert values["long_text"].value_long_text == "Line one\nLine two"
    assert (str(values["monetary"].value_decimal), values["monetary"].value_currency) == ("12.5000", "EUR")
    assert values["select"].value_text == "paid"
    assert values["document_link"].value_document_id == other.pk
    html = page.get(f"/files/{letter.pk}").content.decode()
    assert f'name="cf_{fields["monetary"].pk}_0" value="12.50"' in html
    assert f'name="cf_{fields["monetary"].pk}_1" value="EUR"' in html


def test_a_link_to_another_users_document_is_refused_beside_the_field(client, owner, other_user, letter):
    link = CustomField.objects.create(name="Follows", data_type="document_link", owner=owner)
    theirs = DocumentFactory.create(owner=other_user)

    response = save(signed_in(client, owner), letter, form_of(letter, **{f"cf_{link.pk}": str(theirs.pk)}))

    html = response.content.decode()
    assert response.status_code == 400
    assert f"no document {theirs.pk} of this owner" in html
    assert f'value="{theirs.pk}"' in html
    assert not CustomFieldValue.objects.filter(document=letter).exists()


# --- Conflicts -----------------------------------------------------------------------------


def test_a_save_on_an_older_version_shows_the_conflict_and_keeps_the_stored_value(
    client, owner, letter, django_capture_on_commit_callbacks
):
    page = signed_in(client, owner)
    opened = form_of(letter)
    # Someone else saves first.
    with django_capture_on_commit_callbacks(execute=True):
        save(page, letter, form_of(letter, document_title="Their title"))

    response = save(page, letter, {**opened, "document_title": "My title", "language": "de"})

    html = response.content.decode()
    assert response.status_code == 409
    assert "Someone changed this document after you opened it" in html
    row = re.search(r'<tr data-field="document_title">(.*?)</tr>', html, flags=re.S)
    assert row is not None
    assert re.search(r'data-side="theirs">Their title<', row.group(1))
    assert re.search(r'data-side="yours">My title<', row.group(1))
    # Mine are still in the form, with the stored version, ready to be saved over theirs.
    assert 'name="document_title" value="My title"' in html
    assert f'name="version" value="{letter.version + 1}"' in html
    assert "Save mine over theirs" in html
    assert Document.objects.get(pk=letter.pk).document_title == "Their title"


def test_saving_again_from_the_conflict_puts_mine_over_theirs(
    client, owner, letter, django_capture_on_commit_callbacks
):
    page = signed_in(client, owner)
    opened = form_of(letter)
    with django_capture_on_commit_callbacks(execute=True):
        save(page, letter, form_of(letter, document_title="Their title"))
    conflict = save(page, letter, {**opened, "document_title": "My title"})
    version = re.search(r'name="version" value="(\d+)"', conflict.content.decode())
    assert version is not None

    with django_capture_on_commit_callbacks(execute=True):
        response = save(page, letter, {**opened, "document_title": "My title", "version": version.group(1)})

    assert response.status_code == 302
    assert Document.objects.get(pk=letter.pk).document_title == "My title"
    titles = list(
        DocumentChange.objects.filter(document=letter, field="document_title").values_list("new", flat=True)
    )
    assert titles == ["Their title", "My title"]


# --- Access --------------------------------------------------------------------------------


def test_another_users_document_is_a_404_to_edit_and_to_its_notes(client, owner, other_user, letter):
    page = signed_in(client, other_user)
    note = Note.objects.create(document=letter, author=owner, text="mine")

    assert page.get(f"/files/{letter.pk}").status_code == 404
    assert save(page, letter, form_of(letter, document_title="Taken")).status_code == 404
    assert page.post(f"/files/{letter.pk}/notes", {"text": "hello"}).status_code == 404
    assert page.post(f"/files/{letter.pk}/notes/{note.pk}/delete").status_code == 404
    assert Document.objects.get(pk=letter.pk).document_title == "Scan 001"
    assert list(Note.objects.values_list("text", flat=True)) == ["mine"]


def test_an_operator_gives_the_document_to_another_user(client, operator, other_user, letter):
    page = signed_in(client, operator)
    html = page.get(f"/files/{letter.pk}").content.decode()
    assert '<select name="owner"' in html

    response = save(page, letter, {**form_of(letter), "owner": other_user.pk})

    assert response.status_code == 302
    assert Document.objects.get(pk=letter.pk).owner == other_user


def test_a_user_has_no_owner_field_and_an_owner_posted_anyway_is_ignored(client, owner, other_user, letter):
    page = signed_in(client, owner)
    assert 'name="owner"' not in page.get(f"/files/{letter.pk}").content.decode()

    response = save(page, letter, {**form_of(letter, document_title="Mine still"), "owner": other_user.pk})

    assert response.status_code == 302
    stored = Document.objects.get(pk=letter.pk)
    assert (stored.owner, stored.document_title) == (owner, "Mine still")


# --- Notes ---------------------------------------------------------------------------------


def test_a_note_is_added_shown_with_its_author_and_time_and_found_by_search(
    client, owner, letter, django_capture_on_commit_callbacks
):
    page = signed_in(client, owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(
            f"/files/{letter.pk}/notes", {"text": "Paid by bank transfer on the 3rd"}, follow=True
        )

    html = response.content.decode()
    assert "Note added." in html
    note = Note.objects.get(document=letter)
    assert f'id="note-{note.pk}"' in html
    assert "Paid by bank transfer on the 3rd" in html
    assert "owner ·" in html
    assert search(viewer=Viewer(user=owner), query="transfer").total == 1


def test_an_empty_note_is_refused_beside_the_box(client, owner, letter):
    response = signed_in(client, owner).post(f"/files/{letter.pk}/notes", {"text": "   "})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Note.objects.exists()


def test_a_note_is_removed_by_its_author_or_an_operator_but_not_by_another_user(
    client, owner, other_user, operator, letter, settings
):
    settings.MULTI_USER_ENABLED = False  # both users see the document; only the rule differs
    by_owner = Note.objects.create(document=letter, author=owner, text="by owner")
    by_other = Note.objects.create(document=letter, author=other_user, text="by other")

    page = signed_in(client, other_user)
    html = page.get(f"/files/{letter.pk}").content.decode()
    assert f"/files/{letter.pk}/notes/{by_other.pk}/delete" in html
    assert f"/files/{letter.pk}/notes/{by_owner.pk}/delete" not in html
    refused = page.post(f"/files/{letter.pk}/notes/{by_owner.pk}/delete", follow=True)
    assert "Only its author or an operator removes a note." in refused.content.decode()
    page.post(f"/files/{letter.pk}/notes/{by_other.pk}/delete")
    assert list(Note.objects.values_list("text", flat=True)) == ["by owner"]

    signed_in(client, operator).post(f"/files/{letter.pk}/notes/{by_owner.pk}/delete")
    assert not Note.objects.exists()


def test_thirty_notes_and_history_rows_cost_a_fixed_handful_of_queries(
    client, owner, letter, django_assert_max_num_queries
):
    page = signed_in(client, owner)
    for number in range(30):
        Note.objects.create(document=letter, author=owner, text=f"note {number}")
        DocumentChange.objects.create(
            document=letter, actor=owner, actor_name="owner", origin=ChangeOrigin.PAGE,
            field="document_title", old=f"t{number}", new=f"t{number + 1}",
        )  # fmt: skip

    with django_assert_max_num_queries(30):
        response = page.get(f"/files/{letter.pk}")

    assert len(history_rows(response.content.decode())) == 30


def test_a_select_value_whose_option_was_taken_away_does_not_block_saving_other_fields(client, owner, letter):
    status = CustomField.objects.create(
        name="Status", data_type="select", options=["paid", "open"], owner=owner
    )
    CustomFieldValue.objects.create(document=letter, field=status, value_text="overdue")
    page = signed_in(client, owner)
    assert (
        '<option value="overdue" selected>overdue</option>'
        in page.get(f"/files/{letter.pk}").content.decode()
    )

    response = save(page, letter, form_of(letter, document_title="Renamed", **{f"cf_{status.pk}": "overdue"}))

    assert response.status_code == 302
    assert CustomFieldValue.objects.get(document=letter).value_text == "overdue"
    assert Document.objects.get(pk=letter.pk).document_title == "Renamed"


def test_a_form_without_its_version_is_refused_and_says_to_reload(client, owner, letter):
    data = form_of(letter, document_title="No version")
    del data["version"]

    response = save(signed_in(client, owner), letter, data)

    assert response.status_code == 400
    assert "reload the page" in response.content.decode()
    assert Document.objects.get(pk=letter.pk).document_title == "Scan 001"
