"""Secrets at rest: sealed in the database, opened with SESSION_SECRET or the previous one,
never printed."""

from __future__ import annotations

import base64
import copy
import logging
import pickle

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core import serializers
from django.db import connection
from django.forms.models import model_to_dict

from destinations.kinds import kind_for
from destinations.kinds.base import DestinationMisconfigured
from destinations.models import Destination
from destinations.services import destination_create
from docuelevate.encryption import SecretsUnreadable, SecretValues, derive_key, seal, unseal

OLD_SECRET = "the-old-session-secret-0123456789-abcdefghij"
NEW_SECRET = "the-new-session-secret-9876543210-klmnopqrst"
PASSWORD = "s3cr3t-Pa55word-nobody-may-see"


@pytest.fixture
def destination(db):
    return destination_create(
        kind="s3",
        name="archive",
        owner=None,
        settings={"bucket": "archive"},
        secrets={"access_key_id": "AKIAEXAMPLE", "secret_access_key": PASSWORD},
    )


def stored_column(destination: Destination) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM destinations_destination WHERE id = %s", [destination.pk])
        (value,) = cursor.fetchone()
    return str(value)


def test_a_sealed_value_opens_again_and_shows_nothing_of_itself():
    token = seal({"password": PASSWORD})
    assert PASSWORD not in token
    assert PASSWORD not in base64.urlsafe_b64decode(token).decode(errors="replace")
    assert unseal(token) == {"password": PASSWORD}


def test_the_key_is_derived_from_the_secret_and_is_not_the_secret(settings):
    settings.SECRET_KEY = NEW_SECRET
    token = seal("x")
    # Whoever takes the raw secret as the key opens nothing.
    raw_key = base64.urlsafe_b64encode(NEW_SECRET.encode()[:32])
    with pytest.raises(InvalidToken):
        Fernet(raw_key).decrypt(token.encode())
    assert Fernet(derive_key(NEW_SECRET)).decrypt(token.encode()) == b'"x"'
    assert derive_key(NEW_SECRET) != derive_key(OLD_SECRET)


def test_the_database_holds_only_the_sealed_form(destination):
    column = stored_column(destination)
    assert PASSWORD not in column
    assert "secret_access_key" not in column
    reloaded = Destination.objects.get(pk=destination.pk)
    assert reloaded.secrets["secret_access_key"] == PASSWORD


def test_saving_an_unchanged_destination_keeps_its_token(destination):
    before = stored_column(destination)
    reloaded = Destination.objects.get(pk=destination.pk)
    reloaded.name = "renamed"
    reloaded.save()
    assert stored_column(reloaded) == before


def test_the_previous_secret_still_opens_what_it_sealed(settings, destination):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_SECRET, []
    token = seal({"password": PASSWORD})
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_SECRET, [OLD_SECRET]
    assert unseal(token) == {"password": PASSWORD}
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(SecretsUnreadable) as error:
        unseal(token)
    assert "SESSION_SECRET_PREVIOUS" in str(error.value)


def test_lost_secrets_still_list_and_fail_the_delivery_with_the_fix(settings, destination):
    settings.SECRET_KEY = NEW_SECRET  # the secret they were sealed under is gone
    reloaded = Destination.objects.get(pk=destination.pk)
    assert repr(reloaded.secrets) == "<SecretValues: unreadable>"
    with pytest.raises(DestinationMisconfigured) as error:
        kind_for(reloaded)
    assert "enter them again" in error.value.message


def test_secrets_never_print(destination, caplog):
    reloaded = Destination.objects.get(pk=destination.pk)
    secrets = reloaded.secrets
    assert repr(secrets) == str(secrets) == "<SecretValues: access_key_id, secret_access_key>"
    assert PASSWORD not in repr(reloaded)
    assert PASSWORD not in repr(reloaded.__dict__)
    assert PASSWORD not in str(model_to_dict(reloaded))
    assert PASSWORD not in serializers.serialize("json", [reloaded])
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("destination %s has %r (%s)", reloaded, secrets, vars(reloaded))
    assert PASSWORD not in caplog.text


def test_secrets_assigned_as_a_dict_are_held_sealed_at_once(destination):
    destination.secrets = {"secret_access_key": PASSWORD, "access_key_id": "AKIA"}
    assert isinstance(destination.secrets, SecretValues)
    assert PASSWORD not in repr(vars(destination))
    with pytest.raises(TypeError):
        destination.secrets["secret_access_key"] = "changed"  # type: ignore[index]


def test_a_pickled_or_copied_destination_carries_its_secrets_sealed(destination):
    assert PASSWORD.encode() not in pickle.dumps(destination)
    reloaded = Destination.objects.get(pk=destination.pk)
    assert reloaded.secrets["secret_access_key"] == PASSWORD  # decrypted in memory
    assert PASSWORD.encode() not in pickle.dumps(reloaded)
    restored = pickle.loads(pickle.dumps(reloaded))  # noqa: S301 - our own bytes, just made
    assert restored.secrets["secret_access_key"] == PASSWORD
    assert copy.deepcopy(reloaded).secrets.reveal() == reloaded.secrets.reveal()
