"""The /destinations pages, and deliveries on the document page and the files list: who sees
and changes what, secrets that are never shown back, and the buttons that test and
redeliver (against a real S3 API)."""

from __future__ import annotations

from html import escape

import pytest
from django.test import Client
from django.urls import reverse

from destinations.kinds import KINDS, kind_class
from destinations.models import Delivery, DeliveryStatus, Destination, HealthStatus
from destinations.pages.forms import entered_secret_names
from destinations.services import (
    deliveries_schedule,
    delivery_run,
    destination_create,
    system_destinations_sync,
)
from destinations.tests.conftest import S3_KEYS

CONTENT = b"%PDF-1.7 delivered bytes\n%%EOF\n"


@pytest.fixture
def browser_as(request):
    """A signed-in browser session of the named persona (none for ``anonymous``)."""

    def sign_in(persona: str) -> Client:
        client = Client()
        if persona != "anonymous":
            client.force_login(request.getfixturevalue(persona))
        return client

    return sign_in


def s3(owner=None, name="Archive") -> Destination:
    return destination_create(
        kind="s3", name=name, owner=owner, settings={"bucket": "archive"}, secrets=S3_KEYS
    )


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", sent.append)
    return sent


# --- The list -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "shown", "hidden"),
    [
        ("owner", ["Owners archive"], ["Other users archive", "Company archive", "System-wide destinations"]),
        ("other_user", ["Other users archive"], ["Owners archive", "Company archive"]),
        (
            "operator",
            ["Company archive", "System-wide destinations"],
            ["Owners archive", "Other users archive"],
        ),
    ],
)
def test_the_list_shows_a_persona_what_they_manage(browser_as, owner, other_user, persona, shown, hidden):
    s3(owner, "Owners archive")
    s3(other_user, "Other users archive")
    s3(None, "Company archive")
    page = browser_as(persona).get(reverse("destinations"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/destinations" aria-current="page"' in html  # in the navigation
    for text in shown:
        assert text in html
    for text in hidden:
        assert text not in html
    assert S3_KEYS["secret_access_key"] not in html


@pytest.mark.parametrize(
    ("name", "kwargs", "method"),
    [
        ("destinations", {}, "get"),
        ("destination-new", {}, "get"),
        ("destination-edit", {"destination_id": 1}, "get"),
        ("destination-test", {"destination_id": 1}, "post"),
        ("destination-remove", {"destination_id": 1}, "post"),
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(browser_as, db, name, kwargs, method):
    answer = getattr(browser_as("anonymous"), method)(reverse(name, kwargs=kwargs))
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("account_login"))


def test_the_list_shows_health_and_costs_the_same_queries_for_one_destination_or_many(
    browser_as, owner, django_assert_max_num_queries
):
    client = browser_as("owner")
    failing = s3(owner, "broken")
    Destination.objects.filter(pk=failing.pk).update(
        health_status=HealthStatus.FAILING, health_error="The bucket archive does not exist at AWS."
    )
    with django_assert_max_num_queries(6) as few:
        html = client.get(reverse("destinations")).content.decode()
    assert 'data-status="failing">Failing<' in html
    assert "The bucket archive does not exist at AWS." in html
    for number in range(5):
        s3(owner, f"more {number}")
    with django_assert_max_num_queries(len(few)):
        client.get(reverse("destinations"))


# --- Adding -------------------------------------------------------------------------------------


def form(**fields):
    return {
        "name": "My bucket",
        "enabled": "on",
        "folder_template": "{year}/{filename}",
        "collision_policy": "rename",
        "setting_bucket": "my-bucket",
        "setting_folder": "scans",
        "secret_access_key_id": S3_KEYS["access_key_id"],
        "secret_secret_access_key": S3_KEYS["secret_access_key"],
        **fields,
    }


def test_a_user_adds_a_destination_of_the_kind_they_chose(browser_as, owner):
    client = browser_as("owner")
    empty = client.get(reverse("destination-new") + "?kind=s3").content.decode()
    for label in ("Bucket", "Endpoint URL", "Storage class", "Secret access key"):
        assert f">{label}</label>" in empty
    assert 'type="password" name="secret_secret_access_key"' in empty
    assert "system_wide" not in empty  # an operator's choice only
    answer = client.post(reverse("destination-new") + "?kind=s3", form())
    assert answer.status_code == 302
    destination = Destination.objects.get()
    assert (destination.owner, destination.name, destination.settings["bucket"]) == (
        owner,
        "My bucket",
        "my-bucket",
    )
    assert destination.folder_template == "{year}/{filename}"
    assert destination.secrets.reveal() == S3_KEYS
    assert "Saved My bucket" in client.get(reverse("destinations")).content.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_of_a_kind_says_what_to_enter_with_an_example(browser_as, db, kind):
    page = browser_as("owner").get(reverse("destination-new") + f"?kind={kind}").content.decode()
    cls = kind_class(kind)
    for name in (*cls.setting_names, *entered_secret_names(cls)):
        help_text = cls.help_texts.get(name, "")
        assert help_text, f"{kind}'s {name} has no help text"
        # Announced with its field: the span has the id the field's aria-describedby names.
        helptext_id = (
            f"id_setting_{name}_helptext" if name in cls.setting_names else f"id_secret_{name}_helptext"
        )
        assert f'<span id="{helptext_id}" class="text-sm muted">{escape(help_text)}</span>' in page
    # The fields every kind shares: the placeholders, and what each collision policy does.
    for placeholder in (
        "{year}",
        "{month}",
        "{day}",
        "{document_type}",
        "{correspondent}",
        "{title}",
        "{owner}",
    ):
        assert placeholder in page
    assert "2024/Invoice/2024-03-12_Invoice.pdf" in page
    assert "name (2).pdf" in page


def test_a_stored_secret_says_what_it_is_and_that_an_empty_field_keeps_it(browser_as, owner):
    destination = destination_create(
        kind="s3", name="Mine", owner=owner, settings={"bucket": "archive"}, secrets=S3_KEYS
    )
    page = browser_as("owner").get(reverse("destination-edit", args=[destination.pk])).content.decode()
    assert (
        escape(
            "The secret key that goes with the access key, e.g. wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY. "
            "Stored; leave empty to keep it."
        )
        in page
    )


def test_a_refused_destination_says_why_and_never_shows_the_secret_typed(browser_as, owner):
    answer = browser_as("owner").post(
        reverse("destination-new") + "?kind=s3", form(setting_endpoint_url="http://127.0.0.1:9000")
    )
    assert answer.status_code == 400
    html = answer.content.decode()
    assert "private, loopback or reserved address" in html
    assert S3_KEYS["secret_access_key"] not in html
    assert 'value="my-bucket"' in html  # what is not secret stays filled in
    assert not Destination.objects.exists()


def test_an_unknown_kind_goes_back_to_the_list(browser_as, db):
    answer = browser_as("owner").get(reverse("destination-new") + "?kind=gopher", follow=True)
    assert answer.redirect_chain[-1][0] == reverse("destinations")
    assert "Choose the kind of destination to add." in answer.content.decode()


def test_an_operator_adds_a_system_wide_destination_and_a_user_cannot(browser_as, db):
    operator_page = browser_as("operator").get(reverse("destination-new") + "?kind=s3").content.decode()
    assert 'name="system_wide"' in operator_page
    browser_as("operator").post(reverse("destination-new") + "?kind=s3", form(system_wide="on"))
    assert Destination.objects.get().owner is None
    Destination.objects.all().delete()
    browser_as("owner").post(reverse("destination-new") + "?kind=s3", form(system_wide="on"))
    assert Destination.objects.get().owner is not None  # the box is not on a user's form: ignored


# --- Changing -----------------------------------------------------------------------------------


def test_editing_never_shows_a_stored_secret_and_an_empty_field_keeps_it(browser_as, owner):
    destination = s3(owner, "Mine")
    client = browser_as("owner")
    page = client.get(reverse("destination-edit", args=[destination.pk])).content.decode()
    assert S3_KEYS["secret_access_key"] not in page
    assert S3_KEYS["access_key_id"] not in page
    assert "Stored; leave empty to keep it." in page
    assert 'value="archive"' in page  # settings are not secret
    answer = client.post(
        reverse("destination-edit", args=[destination.pk]),
        form(name="Renamed", secret_access_key_id="", secret_secret_access_key=""),
    )
    assert answer.status_code == 302
    destination.refresh_from_db()
    assert destination.name == "Renamed"
    assert destination.settings["bucket"] == "my-bucket"
    assert destination.secrets.reveal() == S3_KEYS


def test_a_new_secret_replaces_the_stored_one_and_a_ticked_box_removes_it(browser_as, operator):
    destination = s3(None, "Company")
    client = browser_as("operator")
    client.post(
        reverse("destination-edit", args=[destination.pk]),
        form(secret_access_key_id="", secret_secret_access_key="a-rotated-secret-value"),
    )
    destination.refresh_from_db()
    assert destination.secrets["secret_access_key"] == "a-rotated-secret-value"
    # Both keys removed: a system-wide destination may use the machine's own role.
    client.post(
        reverse("destination-edit", args=[destination.pk]),
        form(
            secret_access_key_id="",
            secret_secret_access_key="",
            clear_access_key_id="on",
            clear_secret_access_key="on",
        ),
    )
    destination.refresh_from_db()
    assert destination.secrets.reveal() == {}


@pytest.mark.parametrize("persona", ["other_user", "operator"])
@pytest.mark.parametrize(
    ("name", "method"),
    [("destination-edit", "get"), ("destination-edit", "post"), ("destination-test", "post"),
     ("destination-remove", "post")],
)  # fmt: skip
def test_someone_elses_destination_is_not_found_on_any_page(browser_as, owner, persona, name, method):
    destination = s3(owner, "Mine")
    answer = getattr(browser_as(persona), method)(reverse(name, args=[destination.pk]), form(name="Taken"))
    assert answer.status_code == 404
    destination.refresh_from_db()
    assert destination.name == "Mine"


def test_the_environments_destination_offers_only_what_may_change_and_stays(browser_as, db, settings):
    settings.S3_ENABLED = True
    settings.S3_BUCKET_NAME = "company"
    (destination,) = system_destinations_sync()
    client = browser_as("operator")
    page = client.get(reverse("destination-edit", args=[destination.pk])).content.decode()
    assert "The environment defines this destination" in page
    assert 'name="setting_bucket"' not in page
    assert 'name="enabled"' not in page
    listing = client.get(reverse("destinations")).content.decode()
    assert reverse("destination-remove", args=[destination.pk]) not in listing
    client.post(
        reverse("destination-edit", args=[destination.pk]),
        {"name": "Company bucket", "folder_template": "{year}", "collision_policy": "skip"},
    )
    destination.refresh_from_db()
    assert (destination.name, destination.folder_template, destination.settings["bucket"]) == (
        "Company bucket", "{year}", "company",
    )  # fmt: skip
    refused = client.post(reverse("destination-remove", args=[destination.pk]), follow=True)
    assert "S3_ENABLED=false" in refused.content.decode()
    assert Destination.objects.filter(pk=destination.pk).exists()


# --- Testing and removing -----------------------------------------------------------------------


def test_the_test_button_says_whether_the_destination_works(browser_as, owner, make_s3_destination, bucket):
    working = make_s3_destination(owner=owner, name="Working")
    broken = make_s3_destination(owner=owner, name="Broken", bucket_name="no-such-bucket")
    client = browser_as("owner")
    good = client.post(reverse("destination-test", args=[working.pk]), follow=True).content.decode()
    assert "Working works: a test file was written in archive and removed." in good
    bad = client.post(reverse("destination-test", args=[broken.pk]), follow=True).content.decode()
    assert "The bucket no-such-bucket does not exist" in bad
    assert "(configuration)" in bad
    assert bucket.keys() == []
    assert 'data-status="failing">Failing<' in bad
    assert 'data-status="ok">Working<' in bad


def test_removing_a_destination_forgets_it(browser_as, owner):
    destination = s3(owner, "Old")
    answer = browser_as("owner").post(reverse("destination-remove", args=[destination.pk]), follow=True)
    assert "Removed Old." in answer.content.decode()
    assert not Destination.objects.exists()


# --- Deliveries on the document page and the files list -----------------------------------------


@pytest.fixture
def delivered(processed, make_s3_destination, owner, enqueued):
    make_s3_destination(name="Company archive")
    make_s3_destination(name="My bucket", owner=owner, folder="mine", bucket_name="no-such-bucket")
    document = processed(CONTENT)
    for delivery_id in deliveries_schedule(document_id=document.pk):
        delivery_run(delivery_id=delivery_id)
    enqueued.clear()
    return document


def test_the_document_page_shows_each_delivery_with_a_redeliver_button(browser_as, delivered):
    html = browser_as("owner").get(reverse("file-detail", args=[delivered.pk])).content.decode()
    assert '<h2 id="deliveries-title">Deliveries</h2>' in html
    assert "Company archive" in html
    assert 'data-status="delivered">Delivered<' in html
    assert "archive/2024-03-12_Invoice.pdf" in html
    assert 'data-status="failed">Failed<' in html
    assert "The bucket no-such-bucket does not exist" in html
    assert html.count('aria-label="Redeliver to ') == 2
    assert "Redeliver to all" in html


def test_the_redeliver_buttons_queue_one_delivery_or_all(
    browser_as, delivered, enqueued, django_capture_on_commit_callbacks
):
    client = browser_as("owner")
    failed = Delivery.objects.get(status=DeliveryStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        one = client.post(
            reverse("file-redeliver", args=[delivered.pk]),
            {"destination": failed.destination_id},
            follow=True,
        )
    assert "1 delivery queued again." in one.content.decode()
    assert enqueued == [failed.pk]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("file-redeliver", args=[delivered.pk]))
    assert len(enqueued) == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}


def test_another_user_cannot_redeliver_a_document_they_cannot_see(browser_as, delivered, settings, enqueued):
    settings.MULTI_USER_ENABLED = True
    answer = browser_as("other_user").post(reverse("file-redeliver", args=[delivered.pk]))
    assert answer.status_code == 404
    assert enqueued == []


def test_the_files_list_redelivers_the_ticked_documents(
    browser_as, delivered, enqueued, django_capture_on_commit_callbacks
):
    client = browser_as("owner")
    assert 'value="redeliver"' in client.get(reverse("files")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            reverse("files-bulk"), {"action": "redeliver", "ids": [delivered.pk]}, follow=True
        )
    assert "1 document queued for delivery again." in answer.content.decode()
    assert len(enqueued) == 2


def test_a_kind_with_a_mapping_setting_is_edited_as_json_and_keeps_it(browser_as, owner, monkeypatch):
    from documents.tests.file_server import resolve_as

    resolve_as(monkeypatch, {"paperless.example.com": ["93.184.216.34"]})
    destination = destination_create(
        kind="paperless",
        name="Paperless",
        owner=owner,
        settings={"host": "https://paperless.example.com", "custom_fields_mapping": {"absender": "Sender"}},
        secrets={"api_token": "a-paperless-token-0123456789"},
    )
    client = browser_as("owner")
    url = reverse("destination-edit", args=[destination.pk])
    page = client.get(url).content.decode()
    assert "{&quot;absender&quot;: &quot;Sender&quot;}" in page
    assert "a-paperless-token-0123456789" not in page
    answer = client.post(
        url,
        {
            "name": "Paperless at home",
            "enabled": "on",
            "folder_template": "",
            "collision_policy": "rename",
            "setting_host": "https://paperless.example.com",
            "setting_custom_field_absender": "",
            "setting_custom_fields_mapping": '{"absender": "Sender", "empfaenger": "Recipient"}',
            "secret_api_token": "",
        },
    )
    assert answer.status_code == 302
    destination.refresh_from_db()
    assert destination.name == "Paperless at home"
    assert destination.settings["custom_fields_mapping"] == {"absender": "Sender", "empfaenger": "Recipient"}
    assert destination.secrets.reveal() == {"api_token": "a-paperless-token-0123456789"}


def test_the_form_follows_the_kind_yes_no_boxes_with_their_defaults_and_keys_in_text_boxes(browser_as, db):
    client = browser_as("owner")
    ftp = client.get(reverse("destination-new") + "?kind=ftp").content.decode()
    assert (
        'name="setting_use_tls" aria-describedby="id_setting_use_tls_helptext" '
        'id="id_setting_use_tls" checked'
    ) in ftp
    assert (
        'name="setting_allow_plaintext" aria-describedby="id_setting_allow_plaintext_helptext" '
        'id="id_setting_allow_plaintext">'
    ) in ftp
    sftp_form = {
        "name": "NAS",
        "collision_policy": "rename",
        "setting_host": "127.0.0.1",  # refused: the key typed must not come back
        "setting_username": "scanner",
        "setting_verify_host_key": "on",
        "secret_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END",
    }
    refused = client.post(reverse("destination-new") + "?kind=sftp", sftp_form)
    assert refused.status_code == 400
    html = refused.content.decode()
    assert '<textarea name="secret_private_key"' in html
    assert "bm90IGEga2V5" not in html
    assert "private, loopback or reserved address" in html


def test_a_cloud_drive_is_connected_from_its_row_and_its_carried_tokens_are_no_fields(browser_as, owner):
    destination = destination_create(kind="dropbox", name="My Dropbox", owner=owner, settings={}, secrets={})
    client = browser_as("owner")
    listing = client.get(reverse("destinations")).content.decode()
    connect = reverse("destination-connect", args=[destination.pk]) + "?next=" + reverse("destinations")
    assert f'href="{connect}"' in listing
    form = client.get(reverse("destination-edit", args=[destination.pk])).content.decode()
    assert 'name="secret_refresh_token"' in form
    assert "renewed_refresh_token" not in form
