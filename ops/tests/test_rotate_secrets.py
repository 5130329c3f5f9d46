"""``manage.py rotate_secrets``: every stored credential sealed again under the current secret."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from destinations.models import Destination
from destinations.services import destination_create
from docuelevate.encryption import SecretsUnreadable, unseal
from sources.models import Source
from sources.services import source_create

OLD_SECRET = "the-old-session-secret-0123456789-abcdefghij"
NEW_SECRET = "the-new-session-secret-9876543210-klmnopqrst"
MAILBOX_PASSWORD = "the-mailbox-password"
KEYS = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "the-secret-access-key-value"}


def rotate(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("rotate_secrets", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def stored_token(destination: Destination) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM destinations_destination WHERE id = %s", [destination.pk])
        (value,) = cursor.fetchone()
    return str(value)


@pytest.fixture
def sealed_under_old_secret(db, settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_SECRET, []
    destinations = [
        destination_create(kind="s3", name=f"archive {n}", owner=None, settings={"bucket": "b"}, secrets=KEYS)
        for n in range(2)
    ]
    destination_create(kind="s3", name="instance role", owner=None, settings={"bucket": "b"}, secrets={})
    source_create(
        kind="imap",
        name="mailbox",
        owner=None,
        settings={"host": "imap.example.com", "username": "scans"},
        secrets={"password": MAILBOX_PASSWORD},
    )
    return destinations


def test_rotation_reseals_everything_under_the_new_secret(settings, sealed_under_old_secret):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_SECRET, [OLD_SECRET]
    code, out, _ = rotate()
    assert code == 0
    assert "destinations.Destination.secrets: 2 re-encrypted, 0 already current, 1 empty, 0 unreadable" in out
    assert "sources.Source.secrets: 1 re-encrypted, 0 already current, 0 empty, 0 unreadable" in out

    settings.SECRET_KEY_FALLBACKS = []  # the previous secret can go now
    for destination in sealed_under_old_secret:
        assert unseal(stored_token(destination)) == KEYS
        assert Destination.objects.get(pk=destination.pk).secrets.reveal() == KEYS
    assert Source.objects.get(name="mailbox").secrets.reveal() == {"password": MAILBOX_PASSWORD}


def test_a_second_rotation_finds_nothing_to_do(settings, sealed_under_old_secret):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_SECRET, [OLD_SECRET]
    rotate()
    tokens = [stored_token(destination) for destination in sealed_under_old_secret]
    code, out, _ = rotate("--json")
    assert code == 0
    reports = {report.pop("field"): report for report in json.loads(out)["fields"]}
    assert reports == {
        "destinations.Destination.secrets": {"resealed": 0, "current": 2, "empty": 1, "unreadable": 0},
        "sources.Source.secrets": {"resealed": 0, "current": 1, "empty": 0, "unreadable": 0},
    }
    assert [stored_token(destination) for destination in sealed_under_old_secret] == tokens


def test_without_the_previous_secret_rotation_reports_what_it_cannot_open(settings, sealed_under_old_secret):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_SECRET, []
    code, out, err = rotate()
    assert code == 1
    assert "2 unreadable" in out
    assert "SESSION_SECRET_PREVIOUS" in err
    assert KEYS["secret_access_key"] not in out + err
    with pytest.raises(SecretsUnreadable):
        unseal(stored_token(sealed_under_old_secret[0]))
