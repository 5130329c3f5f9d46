from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User


@pytest.mark.django_db
def test_command_creates_the_operator_from_settings(settings, capsys):
    settings.ADMIN_USERNAME = "chief"
    settings.ADMIN_PASSWORD = "a-long-and-unguessable-pass"
    call_command("bootstrap_admin")
    assert "Created operator 'chief'" in capsys.readouterr().out
    assert User.objects.get(username="chief").is_superuser


@pytest.mark.django_db
def test_command_needs_both_username_and_password(settings):
    settings.ADMIN_USERNAME = "chief"
    settings.ADMIN_PASSWORD = None
    with pytest.raises(CommandError, match="both ADMIN_USERNAME and ADMIN_PASSWORD"):
        call_command("bootstrap_admin")


@pytest.mark.django_db
def test_command_without_settings_changes_nothing(settings, capsys):
    settings.ADMIN_USERNAME = None
    settings.ADMIN_PASSWORD = None
    call_command("bootstrap_admin")
    assert "no operator account changed" in capsys.readouterr().out
    assert not User.objects.exists()


@pytest.mark.django_db
def test_command_generates_a_login_for_a_fresh_embedded_installation(settings, tmp_path, capsys):
    settings.ADMIN_USERNAME = None
    settings.ADMIN_PASSWORD = None
    settings.WORKDIR = tmp_path
    call_command("bootstrap_admin", "--generate-if-missing")
    password = (tmp_path / "initial-admin-password").read_text().strip()
    assert f"Log in as 'admin' with password '{password}'" in capsys.readouterr().out
