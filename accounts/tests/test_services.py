from __future__ import annotations

import stat

import pytest

from accounts.models import User
from accounts.services import admin_bootstrap, admin_generate_initial
from docuelevate.errors import InvalidInput

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
