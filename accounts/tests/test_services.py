from __future__ import annotations

import hashlib
import stat
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.services import (
    admin_bootstrap,
    admin_generate_initial,
    token_authenticate,
    token_create,
    token_create_for_device,
    token_revoke,
    token_revoke_all,
)
from docuelevate.errors import InvalidInput, NotFound

GOOD_PASSWORD = "a-long-and-unguessable-pass"


@pytest.mark.django_db
def test_bootstrap_creates_an_operator_who_can_log_in():
    login = admin_bootstrap(username="chief", password=GOOD_PASSWORD, email="chief@example.org")
    user = User.objects.get(username="chief")
    assert login.created is True
    assert user.is_staff
    assert user.is_superuser
    assert user.is_active
    assert user.check_password(GOOD_PASSWORD)
    assert user.email == "chief@example.org"


@pytest.mark.django_db
def test_bootstrap_is_idempotent_and_applies_a_new_password():
    admin_bootstrap(username="chief", password=GOOD_PASSWORD)
    again = admin_bootstrap(username="chief", password=GOOD_PASSWORD)
    assert again.created is False
    admin_bootstrap(username="chief", password="another-long-secret-pass")
    assert User.objects.filter(username="chief").count() == 1
    assert User.objects.get(username="chief").check_password("another-long-secret-pass")


@pytest.mark.django_db
def test_bootstrap_restores_operator_rights_that_were_removed():
    admin_bootstrap(username="chief", password=GOOD_PASSWORD)
    User.objects.filter(username="chief").update(is_staff=False, is_active=False)
    admin_bootstrap(username="chief", password=GOOD_PASSWORD)
    user = User.objects.get(username="chief")
    assert user.is_staff
    assert user.is_active


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["changeme", "admin", "your_secure_password", "Short-1"])
def test_bootstrap_refuses_placeholder_and_short_passwords(password):
    with pytest.raises(InvalidInput, match="ADMIN_PASSWORD is not acceptable"):
        admin_bootstrap(username="chief", password=password)
    assert not User.objects.filter(username="chief").exists()


@pytest.mark.django_db
def test_first_embedded_start_generates_a_private_admin_password(tmp_path):
    credentials = tmp_path / "initial-admin-password"
    login = admin_generate_initial(credentials_file=credentials)
    assert login is not None
    assert login.created
    assert User.objects.get(username="admin").check_password(login.password)
    assert credentials.read_text().strip() == login.password
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


@pytest.mark.django_db
def test_later_starts_show_the_same_password_while_it_is_still_valid(tmp_path):
    credentials = tmp_path / "initial-admin-password"
    first = admin_generate_initial(credentials_file=credentials)
    second = admin_generate_initial(credentials_file=credentials)
    assert first is not None
    assert second is not None
    assert not second.created
    assert second.password == first.password
    assert User.objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_a_changed_password_is_never_shown(tmp_path):
    credentials = tmp_path / "initial-admin-password"
    admin_generate_initial(credentials_file=credentials)
    user = User.objects.get(username="admin")
    user.set_password("the-operator-chose-this-one")
    user.save()
    assert admin_generate_initial(credentials_file=credentials) is None


@pytest.mark.django_db
def test_an_existing_operator_means_no_generated_account(tmp_path, operator):
    operator.is_superuser = True
    operator.save()
    assert admin_generate_initial(credentials_file=tmp_path / "pw") is None
    assert not User.objects.filter(username="admin").exists()


# --- API tokens ------------------------------------------------------------------------------

PERSONAS = ["owner", "other_user", "operator"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_new_token_is_de_plus_random_and_only_its_hash_and_prefix_are_kept(request, persona):
    user = request.getfixturevalue(persona)
    token, raw_token = token_create(user=user, name="laptop")
    assert raw_token.startswith("de_")
    assert len(raw_token) == 46  # "de_" + 43 characters of token_urlsafe(32)
    assert token.owner == user
    assert token.token_prefix == raw_token[:11]
    assert token.token_hash == hashlib.sha256(raw_token.encode()).hexdigest()
    assert token.operator_scope is False
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        stored = repr(cursor.fetchall())
    assert raw_token not in stored
    assert raw_token[11:] not in stored


def test_every_token_is_different(owner):
    tokens = {token_create(user=owner, name="same name")[1] for _ in range(20)}
    assert len(tokens) == 20


@pytest.mark.parametrize("persona", ["owner", "other_user"])
def test_operator_scope_is_refused_to_people_who_are_not_staff(request, persona):
    user = request.getfixturevalue(persona)
    with pytest.raises(InvalidInput, match="Only operators"):
        token_create(user=user, name="ops", operator_scope=True)
    assert not ApiToken.objects.exists()


def test_an_operator_can_create_a_token_with_operator_scope(operator):
    token, _ = token_create(user=operator, name="ops", operator_scope=True)
    assert token.operator_scope is True


def test_a_token_name_loses_control_characters_and_surrounding_blanks(owner):
    token, _ = token_create(user=owner, name="  back\x00up\n\u202escript\t ")
    assert token.name == "backupscript"


@pytest.mark.parametrize("name", ["", "   ", "\x00\x07\n"])
def test_a_token_needs_a_name(owner, name):
    with pytest.raises(InvalidInput, match="must not be empty"):
        token_create(user=owner, name=name)


def test_a_token_name_has_a_length_limit(owner):
    with pytest.raises(InvalidInput, match="at most 150"):
        token_create(user=owner, name="x" * 151)


def test_an_expiry_in_the_past_is_refused(owner, clock):
    with pytest.raises(InvalidInput, match="future"):
        token_create(user=owner, name="old", expires_at=timezone.now() - timedelta(seconds=1))


def test_a_token_with_a_future_expiry_keeps_it(owner, clock):
    expires_at = timezone.now() + timedelta(days=30)
    token, _ = token_create(user=owner, name="month", expires_at=expires_at)
    assert token.expires_at == expires_at


@pytest.mark.parametrize("persona", PERSONAS)
def test_people_can_revoke_their_own_tokens(request, persona):
    user = request.getfixturevalue(persona)
    token, raw_token = token_create(user=user, name="laptop")
    token_revoke(user=user, token_id=token.pk)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token_authenticate(raw_token=raw_token, ip=None) is None


def test_revoking_twice_keeps_the_first_date(owner):
    token, _ = token_create(user=owner, name="laptop")
    first = token_revoke(user=owner, token_id=token.pk).revoked_at
    assert token_revoke(user=owner, token_id=token.pk).revoked_at == first


@pytest.mark.parametrize("persona", ["other_user", "operator"])
def test_another_users_token_is_not_found_and_stays_valid(request, persona, owner):
    stranger = request.getfixturevalue(persona)
    token, raw_token = token_create(user=owner, name="laptop")
    with pytest.raises(NotFound):
        token_revoke(user=stranger, token_id=token.pk)
    assert token_authenticate(raw_token=raw_token, ip=None) is not None


def test_an_unknown_token_id_is_not_found(owner):
    with pytest.raises(NotFound):
        token_revoke(user=owner, token_id=999_999)


def test_revoke_all_revokes_only_live_tokens_and_counts_them(owner, other_user):
    token_create(user=owner, name="a")
    token_create(user=other_user, name="b")
    already, _ = token_create(user=owner, name="c")
    token_revoke(user=owner, token_id=already.pk)
    first_revocation = ApiToken.objects.get(pk=already.pk).revoked_at
    assert token_revoke_all(tokens=ApiToken.objects.all()) == 2
    assert not ApiToken.objects.filter(revoked_at__isnull=True).exists()
    assert ApiToken.objects.get(pk=already.pk).revoked_at == first_revocation


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_live_token_authenticates_its_owner(request, persona):
    user = request.getfixturevalue(persona)
    token, raw_token = token_create(user=user, name="laptop")
    found = token_authenticate(raw_token=raw_token, ip="192.0.2.1")
    assert found == token
    assert found is not None
    assert found.owner == user


@pytest.mark.parametrize(
    "raw_token",
    ["", "de_", "de_nonsense", "not-a-docuelevate-token", "de_" + "A" * 43, "de_" + "x" * 5000],
)
def test_unknown_and_malformed_tokens_authenticate_nobody(owner, raw_token):
    token_create(user=owner, name="laptop")
    assert token_authenticate(raw_token=raw_token, ip=None) is None


def test_a_token_that_differs_in_one_character_authenticates_nobody(owner):
    _, raw_token = token_create(user=owner, name="laptop")
    changed = raw_token[:-1] + ("A" if raw_token[-1] != "A" else "B")
    assert token_authenticate(raw_token=changed, ip=None) is None


def test_a_token_authenticates_until_its_expiry_and_nobody_from_then_on(owner, clock):
    token, raw_token = token_create(user=owner, name="laptop", expires_at=timezone.now() + timedelta(days=1))
    clock.shift(timedelta(days=1) - timedelta(seconds=1))
    assert token_authenticate(raw_token=raw_token, ip=None) == token
    clock.shift(timedelta(seconds=1))
    assert token_authenticate(raw_token=raw_token, ip=None) is None


def test_a_token_of_a_deactivated_user_authenticates_nobody(owner):
    _, raw_token = token_create(user=owner, name="laptop")
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert token_authenticate(raw_token=raw_token, ip=None) is None


def test_the_first_use_of_a_token_is_recorded_with_its_address(owner, clock):
    token, raw_token = token_create(user=owner, name="laptop")
    assert token.last_used_at is None
    clock.shift(timedelta(hours=3))
    token_authenticate(raw_token=raw_token, ip="2001:db8::1")
    token.refresh_from_db()
    assert token.last_used_at == timezone.now()
    assert token.last_used_ip == "2001:db8::1"


def test_uses_within_a_minute_are_not_written_again(owner, django_assert_num_queries, clock):
    token, raw_token = token_create(user=owner, name="laptop")
    token_authenticate(raw_token=raw_token, ip="192.0.2.1")
    token.refresh_from_db()
    first_use = token.last_used_at
    clock.shift(timedelta(seconds=59))
    with django_assert_num_queries(1):  # the lookup only, no UPDATE
        token_authenticate(raw_token=raw_token, ip="192.0.2.99")
    token.refresh_from_db()
    assert token.last_used_at == first_use
    assert token.last_used_ip == "192.0.2.1"


def test_a_use_a_minute_later_is_recorded(owner, clock):
    token, raw_token = token_create(user=owner, name="laptop")
    token_authenticate(raw_token=raw_token, ip="192.0.2.1")
    clock.shift(timedelta(minutes=1))
    token_authenticate(raw_token=raw_token, ip="192.0.2.2")
    token.refresh_from_db()
    assert token.last_used_at == timezone.now()
    assert token.last_used_ip == "192.0.2.2"


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_device_token_is_named_after_the_device_and_never_operator_scoped(request, persona):
    user = request.getfixturevalue(persona)
    token, raw_token = token_create_for_device(user=user, device_name="Pixel 8")
    assert token.name == "Mobile App \u2013 Pixel 8"
    assert token.operator_scope is False
    assert token_authenticate(raw_token=raw_token, ip=None) == token


def test_a_device_name_loses_control_characters(owner):
    token, _ = token_create_for_device(user=owner, device_name="\tAnna's\x1b[31m iPhone\r\n")
    assert token.name == "Mobile App \u2013 Anna's[31m iPhone"


@pytest.mark.parametrize(
    ("device_name", "message"), [("\n\t\x00", "must not be empty"), ("x" * 101, "at most 100")]
)
def test_a_device_name_must_be_present_and_short(owner, device_name, message):
    with pytest.raises(InvalidInput, match=message):
        token_create_for_device(user=owner, device_name=device_name)
