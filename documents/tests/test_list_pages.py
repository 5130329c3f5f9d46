"""The /organise pages of the managed lists, through the Django test client: counts, the tag
tree, adding, changing, merging and deleting entries (documents moving with them), and who
may do what; and in a real browser, a coloured tag on a document."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from django.test import Client

from accounts.access import Viewer
from accounts.models import User
from conftest import BrowserPage, LiveServer, current_database_url, set_password_as_server
from documents.models import (
    Correspondent,
    CustomField,
    Document,
    DocumentChange,
    DocumentType,
    StoragePath,
    Tag,
)
from documents.organise.lists import KINDS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _multi_user(settings, sent) -> None:
    settings.MULTI_USER_ENABLED = True


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def letter(ingest, text: str, *, user: User | None = None, tags=(), **fields: Any) -> Document:
    document = ingest(f"This is a letter: {text}".encode(), f"{text}.txt", user=user)
    if fields:
        Document.objects.filter(pk=document.pk).update(**fields)
    document.tags.set(tags)
    return Document.objects.get(pk=document.pk)


def rows(response) -> dict[str, dict[str, str]]:
    """Each entry row of a list page by name, in order: whose it is, its count, its markup."""
    found = {}
    html = response.content.decode()
    for row in re.findall(r'<tr data-entry-id="\d+".*?</tr>', html, flags=re.S):
        found[unescape(re.search(r'data-name="([^"]*)"', row).group(1))] = {  # type: ignore[union-attr]
            "whose": re.search(r'data-status="(\w+)"', row).group(1),  # type: ignore[union-attr]
            "count": re.search(r'data-count="(\d+)"', row).group(1),  # type: ignore[union-attr]
            "row": row,
        }
    return found


def messages_of(response) -> str:
    return " ".join(re.findall(r'<li class="message [^"]*">(.*?)</li>', unescape(response.content.decode())))


# --- The lists ------------------------------------------------------------------------------


def test_the_index_links_the_five_lists_and_the_menu_links_the_index(owner):
    html = signed_in(owner).get("/organise").content.decode()
    for slug in KINDS:
        assert f'href="/organise/{slug}"' in html
    assert 'href="/organise" aria-current="page"' in html


def test_an_unknown_list_is_no_page(owner):
    assert signed_in(owner).get("/organise/colours").status_code == 404


def test_the_lists_ask_an_anonymous_visitor_to_log_in(client):
    response = client.get("/organise/tags")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_tags_page_shows_the_tree_colours_inbox_owners_and_counts_of_visible_documents(
    owner, other_user, ingest
):
    finance = Tag.objects.create(owner=owner, name="Finance", colour="#1f77b4")
    bills = Tag.objects.create(owner=owner, name="Bills", colour="#ffdd00", parent=finance)
    Tag.objects.create(owner=owner, name="Inbox", is_inbox=True)
    Tag.objects.create(owner=None, name="Important")
    theirs = Tag.objects.create(owner=other_user, name="Private")
    letter(ingest, "one", tags=[bills])
    letter(ingest, "two", tags=[bills, finance])
    letter(ingest, "three", tags=[finance], trashed_at="2026-01-01T00:00:00Z")  # not counted
    letter(ingest, "theirs", user=other_user, tags=[theirs])

    response = signed_in(owner).get("/organise/tags")

    assert response.status_code == 200
    shown = rows(response)
    assert list(shown) == ["Finance", "Bills", "Important", "Inbox"]  # a child under its parent
    assert "Private" not in response.content.decode()
    assert {name: row["count"] for name, row in shown.items()} == {
        "Finance": "1", "Bills": "2", "Important": "0", "Inbox": "0",
    }  # fmt: skip
    assert {name: row["whose"] for name, row in shown.items()} == {
        "Finance": "own", "Bills": "own", "Important": "global", "Inbox": "own",
    }  # fmt: skip
    assert 'data-depth="1"' in shown["Bills"]["row"]
    assert "under Finance" in shown["Bills"]["row"]
    assert "background-color: #1f77b4" in shown["Finance"]["row"]
    assert "color: #ffffff" in shown["Finance"]["row"]  # white reads on blue
    assert "color: #111827" in shown["Bills"]["row"]  # and dark on yellow
    assert "Inbox</td>" in shown["Inbox"]["row"]
    assert 'href="/files?tags=Bills"' in shown["Bills"]["row"]


def test_types_and_correspondents_link_their_counts_to_search_and_other_lists_show_their_attributes(
    owner, ingest
):
    acme = Correspondent.objects.create(owner=owner, name="ACME & Co")
    letter(ingest, "acme", correspondent=acme)
    StoragePath.objects.create(owner=owner, name="By year", template="{created_year}/{title}")
    CustomField.objects.create(owner=owner, name="Total", data_type="monetary", default_currency="EUR")
    CustomField.objects.create(owner=owner, name="Colour", data_type="select", options=["red", "blue"])
    client = signed_in(owner)

    correspondents = rows(client.get("/organise/correspondents"))
    assert correspondents["ACME & Co"]["count"] == "1"
    assert 'href="/search?correspondent=ACME+%26+Co"' in correspondents["ACME & Co"]["row"]
    types = rows(client.get("/organise/document-types"))
    assert types["Invoice"]["whose"] == "global"
    paths = client.get("/organise/storage-paths").content.decode()
    assert "{created_year}/{title}" in paths
    fields = rows(client.get("/organise/custom-fields"))
    assert "Monetary" in fields["Total"]["row"]
    assert "EUR" in fields["Total"]["row"]
    assert "red, blue" in fields["Colour"]["row"]


@pytest.mark.parametrize("slug", list(KINDS))
def test_a_list_page_costs_the_same_few_queries_for_3_or_30_entries(
    owner, ingest, slug, django_assert_max_num_queries
):
    kind = KINDS[slug]
    documents = [letter(ingest, f"n{number}") for number in range(3)]
    extra = {"tags": {}, "storage-paths": {"template": "{title}"}, "custom-fields": {"data_type": "text"}}
    for count in (3, 30):
        existing = kind.model.objects.filter(owner=owner).count()
        parent = None
        for number in range(existing, count):
            attributes: dict[str, Any] = dict(extra.get(slug, {}))
            if slug == "tags":
                attributes["parent"] = parent
            entry = kind.model.objects.create(owner=owner, name=f"{slug} {number}", **attributes)
            parent = entry if slug == "tags" and number % 3 else None
            if kind.many:
                documents[number % 3].tags.add(entry.pk)
            elif kind.document_field:
                Document.objects.filter(pk=documents[number % 3].pk).update(**{kind.document_field: entry})
        client = signed_in(owner)
        # session, user, the entries with their counts (and owners, in the same query).
        with django_assert_max_num_queries(4):
            response = client.get(f"/organise/{slug}")
        assert response.status_code == 200
        assert len([name for name in rows(response) if name.startswith(slug)]) == count


# --- Adding --------------------------------------------------------------------------------


def test_a_coloured_nested_inbox_tag_is_added_as_the_users_own(owner):
    parent = Tag.objects.create(owner=owner, name="Finance")
    response = signed_in(owner).post(
        "/organise/tags",
        {"new-name": "Bills", "new-colour": "#FF8800", "new-parent_tag": parent.pk, "new-is_inbox": "on"},
    )

    assert response.status_code == 302
    tag = Tag.objects.get(name="Bills")
    assert (tag.owner, tag.colour, tag.parent, tag.is_inbox) == (owner, "#ff8800", parent, True)


def test_a_duplicate_name_shows_the_conflict_and_keeps_what_was_typed(owner):
    Correspondent.objects.create(owner=owner, name="Müller GmbH")

    response = signed_in(owner).post("/organise/correspondents", {"new-name": "MULLER  gmbh"})

    assert response.status_code == 409
    assert "There is a correspondent called 'MULLER gmbh' already." in messages_of(response)
    assert 'value="MULLER  gmbh"' in response.content.decode()
    assert Correspondent.objects.filter(owner=owner).count() == 1


def test_a_storage_path_with_an_unknown_placeholder_is_refused_with_the_reason(owner):
    response = signed_in(owner).post(
        "/organise/storage-paths", {"new-name": "Odd", "new-template": "{year}/{title}"}
    )

    assert response.status_code == 400
    assert "year" in messages_of(response)
    assert 'value="{year}/{title}"' in response.content.decode()
    assert not StoragePath.objects.exists()


def test_a_select_field_is_added_with_its_options_one_a_line(owner):
    response = signed_in(owner).post(
        "/organise/custom-fields",
        {"new-name": "Priority", "new-data_type": "select", "new-options": "high\n\nlow\n"},
    )

    assert response.status_code == 302
    field = CustomField.objects.get(name="Priority")
    assert (field.data_type, field.options, field.owner) == ("select", ["high", "low"], owner)


def test_only_an_operator_sees_the_global_box_and_adds_a_global_entry(owner, operator):
    assert "new-is_global" not in signed_in(owner).get("/organise/document-types").content.decode()
    assert "new-is_global" in signed_in(operator).get("/organise/document-types").content.decode()

    refused = signed_in(owner).post("/organise/document-types", {"new-name": "Memo", "new-is_global": "on"})
    assert refused.status_code == 403
    assert "Only operators add a global document type." in messages_of(refused)
    assert not DocumentType.objects.filter(name="Memo").exists()

    added = signed_in(operator).post("/organise/document-types", {"new-name": "Memo", "new-is_global": "on"})
    assert added.status_code == 302
    assert DocumentType.objects.get(name="Memo").owner is None


# --- Changing, merging, deleting -----------------------------------------------------------


def test_a_tag_is_renamed_and_recoloured_on_its_page(owner):
    tag = Tag.objects.create(owner=owner, name="bils", colour="#000000")
    client = signed_in(owner)
    assert client.get(f"/organise/tags/{tag.pk}").status_code == 200

    response = client.post(f"/organise/tags/{tag.pk}", {"edit-name": "Bills", "edit-colour": "#00aa00"})

    assert response.status_code == 302
    tag.refresh_from_db()
    assert (tag.name, tag.colour, tag.is_inbox) == ("Bills", "#00aa00", False)


def test_a_tag_cannot_be_put_under_its_own_child(owner):
    parent = Tag.objects.create(owner=owner, name="Finance")
    child = Tag.objects.create(owner=owner, name="Bills", parent=parent)
    client = signed_in(owner)
    page = client.get(f"/organise/tags/{parent.pk}").content.decode()
    parents = re.search(r'<select name="edit-parent_tag".*?</select>', page, re.S).group(0)  # type: ignore[union-attr]
    assert f'<option value="{child.pk}"' not in parents  # not offered

    response = client.post(
        f"/organise/tags/{parent.pk}",
        {"edit-name": "Finance", "edit-colour": "#000000", "edit-parent_tag": child.pk},
    )

    assert response.status_code == 400
    parent.refresh_from_db()
    assert parent.parent is None


def test_merging_moves_every_document_onto_the_entry_and_deletes_the_others(owner, ingest):
    target = Correspondent.objects.create(owner=owner, name="ACME")
    typo = Correspondent.objects.create(owner=owner, name="ACME Gmbh")
    other = Correspondent.objects.create(owner=owner, name="Acme Ltd")
    documents = [
        letter(ingest, "a", correspondent=typo),
        letter(ingest, "b", correspondent=other),
        letter(ingest, "c", correspondent=target),
    ]
    client = signed_in(owner)
    page = client.get(f"/organise/correspondents/{target.pk}").content.decode()
    assert f'<option value="{typo.pk}"' in page

    response = client.post(
        f"/organise/correspondents/{target.pk}/merge", {"merge-sources": [typo.pk, other.pk]}
    )

    assert response.status_code == 302
    assert "Merged 2 correspondents into ACME" in messages_of(client.get(response["Location"]))
    assert {Document.objects.get(pk=d.pk).correspondent_id for d in documents} == {target.pk}
    assert not Correspondent.objects.filter(pk__in=[typo.pk, other.pk]).exists()
    assert DocumentChange.objects.filter(document=documents[0], field="correspondent", new="ACME").exists()
    assert rows(client.get("/organise/correspondents"))["ACME"]["count"] == "3"


def test_merging_without_a_choice_says_so(owner):
    tag = Tag.objects.create(owner=owner, name="Bills")

    response = signed_in(owner).post(f"/organise/tags/{tag.pk}/merge", {})

    assert response.status_code == 400
    assert "Choose the tag entries to merge into Bills." in messages_of(response)


def test_deleting_a_tag_with_a_replacement_moves_its_documents_there(owner, ingest):
    old = Tag.objects.create(owner=owner, name="Old")
    new = Tag.objects.create(owner=owner, name="New")
    tagged = letter(ingest, "tagged", tags=[old])
    client = signed_in(owner)

    response = client.post(f"/organise/tags/{old.pk}/delete", {"delete-replacement": new.pk})

    assert response.status_code == 302
    assert response["Location"] == "/organise/tags"
    assert not Tag.objects.filter(pk=old.pk).exists()
    assert list(tagged.tags.all()) == [new]


def test_deleting_a_document_type_without_a_replacement_leaves_its_documents_without_one(owner, ingest):
    memo = DocumentType.objects.create(owner=owner, name="Memo")
    typed = letter(ingest, "memo", document_type=memo)

    response = signed_in(owner).post(f"/organise/document-types/{memo.pk}/delete", {"delete-replacement": ""})

    assert response.status_code == 302
    assert Document.objects.get(pk=typed.pk).document_type is None


def test_another_users_entry_is_no_page_and_cannot_be_changed_merged_or_deleted(owner, other_user):
    theirs = Tag.objects.create(owner=other_user, name="Private")
    mine = Tag.objects.create(owner=owner, name="Mine")
    client = signed_in(owner)

    assert client.get(f"/organise/tags/{theirs.pk}").status_code == 404
    assert (
        client.post(
            f"/organise/tags/{theirs.pk}", {"edit-name": "Taken", "edit-colour": "#000000"}
        ).status_code
        == 404
    )
    assert client.post(f"/organise/tags/{theirs.pk}/delete", {}).status_code == 404
    assert client.post(f"/organise/tags/{theirs.pk}/merge", {"merge-sources": [mine.pk]}).status_code == 404
    # Named as the one to merge or to move documents to, it is refused too.
    merged = client.post(f"/organise/tags/{mine.pk}/merge", {"merge-sources": [theirs.pk]})
    assert merged.status_code == 400
    assert "No such tag." in messages_of(merged)
    assert Tag.objects.filter(pk=theirs.pk, name="Private").exists()
    assert Tag.objects.filter(pk=mine.pk).exists()


def test_a_user_sees_a_global_entry_but_only_an_operator_changes_it(owner, operator):
    invoice = DocumentType.objects.get(name="Invoice", owner=None)
    page = signed_in(owner).get(f"/organise/document-types/{invoice.pk}").content.decode()
    assert "operators alone change it" in page
    assert f'action="/organise/document-types/{invoice.pk}/delete"' not in page

    refused = signed_in(owner).post(f"/organise/document-types/{invoice.pk}", {"edit-name": "Bill"})
    assert refused.status_code == 403
    assert "Only operators change a global document type." in messages_of(refused)

    renamed = signed_in(operator).post(f"/organise/document-types/{invoice.pk}", {"edit-name": "Bill"})
    assert renamed.status_code == 302
    invoice.refresh_from_db()
    assert invoice.name == "Bill"


def test_a_user_may_not_move_documents_onto_a_global_entry_they_cannot_change(owner, ingest):
    mine = DocumentType.objects.create(owner=owner, name="Memo")
    page = signed_in(owner).get(f"/organise/document-types/{mine.pk}").content.decode()
    invoice = DocumentType.objects.get(name="Invoice", owner=None)
    assert f'<option value="{invoice.pk}"' not in page  # the service would refuse it

    response = signed_in(owner).post(
        f"/organise/document-types/{mine.pk}/delete", {"delete-replacement": invoice.pk}
    )

    assert response.status_code == 403
    assert DocumentType.objects.filter(pk=mine.pk).exists()


def test_a_custom_field_offers_no_merge_and_keeps_its_type(owner):
    field = CustomField.objects.create(owner=owner, name="Total", data_type="decimal")
    client = signed_in(owner)
    page = client.get(f"/organise/custom-fields/{field.pk}").content.decode()
    assert "/merge" not in page
    assert "edit-data_type" not in page

    response = client.post(
        f"/organise/custom-fields/{field.pk}", {"edit-name": "Net total", "edit-extract_from": "total"}
    )

    assert response.status_code == 302
    field.refresh_from_db()
    assert (field.name, field.data_type, field.extract_from) == ("Net total", "decimal", "total")


# --- In a browser --------------------------------------------------------------------------

PASSWORD = "a-browser-tested-passphrase-18"
STEP_MS = 30_000


def test_a_tag_made_on_the_tags_page_shows_its_colour_and_its_one_document(
    owner: User,
    ingest,
    process_env: dict[str, str],
    transactional_db: None,
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
    browser_page: BrowserPage,
) -> None:
    document = letter(ingest, "for the browser")
    env = {**process_env, "DATABASE_URL": current_database_url(), "SECURITY_HEADERS_ENABLED": "true",
           "MULTI_USER_ENABLED": "true"}  # fmt: skip
    set_password_as_server(env, owner, PASSWORD)
    server = start_gunicorn(env)
    page = browser_page.page
    page.set_default_timeout(STEP_MS)
    browser_page.sign_in(server, owner.username, PASSWORD)

    page.goto(f"{server.url}/organise")
    page.get_by_role("link", name="Tags").click()
    page.get_by_label("Name").fill("Urgent")
    page.locator("#id_new-colour").fill("#c0392b")
    page.get_by_role("button", name="Add tag").click()
    page.wait_for_url(f"{server.url}/organise/tags")
    assert "Added the tag Urgent." in page.locator(".messages").inner_text()

    # The document gets the tag the way an edit would, through the one edit service.
    from documents.organise.editing import document_update

    document_update(viewer=Viewer(user=owner), document_id=document.pk, changes={"tags": ["Urgent"]})

    page.reload()
    row = page.locator("tr[data-name='Urgent']")
    chip = row.locator("[data-colour]")
    assert chip.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(192, 57, 43)"
    assert row.locator("[data-count]").inner_text() == "1"
    row.get_by_role("link", name="1 document with Urgent").click()
    page.wait_for_url(f"{server.url}/files?tags=Urgent")
    assert "for the browser.txt" in page.locator("main").inner_text()

    assert browser_page.problems == []
