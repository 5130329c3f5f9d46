"""The audit trail: sign-ins, tokens, roles, deletions and admin changes are recorded with
who and from where, shown to operators, and never hold a secret."""

from __future__ import annotations

import json
import logging

import pytest

from accounts.models import AuditAction, AuditLog
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from documents.tests.factories import DocumentFactory

pytestmark = pytest.mark.django_db

CLIENT_IP = "198.51.100.7"


def entries(action: AuditAction) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action).order_by("id"))


def everything_recorded(caplog: pytest.LogCaptureFixture) -> str:
    rows = [[row.actor_name, row.ip, row.target, json.dumps(row.detail)] for row in AuditLog.objects.all()]
    return json.dumps(rows) + caplog.text


def test_sign_ins_failures_and_sign_outs_are_recorded_with_the_address(client, owner, caplog):
    caplog.set_level(logging.INFO, logger="docuelevate.audit")
    client.post("/accounts/login/", {"login": "owner", "password": "not-the-password"}, REMOTE_ADDR=CLIENT_IP)
    client.post("/accounts/login/", {"login": "owner", "password": DEFAULT_PASSWORD}, REMOTE_ADDR=CLIENT_IP)
    client.post("/accounts/logout/", REMOTE_ADDR=CLIENT_IP)

    [failed] = entries(AuditAction.LOGIN_FAILED)
    assert (failed.actor_name, failed.actor, str(failed.ip)) == ("owner", None, CLIENT_IP)
    [login] = entries(AuditAction.LOGIN)
    assert (login.actor, str(login.ip)) == (owner, CLIENT_IP)
    [logout] = entries(AuditAction.LOGOUT)
    assert logout.actor == owner
    assert "audit: login_failed by owner from 198.51.100.7" in caplog.text
    recorded = everything_recorded(caplog)
    assert "not-the-password" not in recorded
    assert DEFAULT_PASSWORD not in recorded


def test_token_creation_and_revocation_are_recorded_without_the_token(client, owner, caplog):
    client.force_login(owner)
    created = client.post("/api/api-tokens/", {"name": "laptop"}, content_type="application/json")
    assert created.status_code == 201
    token = created.json()
    client.delete(f"/api/api-tokens/{token['id']}")

    [made] = entries(AuditAction.TOKEN_CREATED)
    assert made.actor == owner
    assert made.target == f"token {token['token_prefix']}… of owner"
    assert made.detail["name"] == "laptop"
    [revoked] = entries(AuditAction.TOKEN_REVOKED)
    assert revoked.detail["token_id"] == token["id"]
    assert token["token"] not in everything_recorded(caplog)


def test_a_role_change_is_recorded_with_before_and_after(owner):
    owner.is_staff = True
    owner.save()
    owner.save(update_fields=["last_login"])  # nothing about roles: nothing recorded

    [change] = entries(AuditAction.ROLE_CHANGED)
    assert change.target == "user owner"
    assert change.detail == {"is_staff": [False, True]}


def test_deleting_a_document_records_who_deleted_what(client, owner):
    document = DocumentFactory.create(owner=owner, original_filename="contract.pdf")
    client.force_login(owner)
    assert client.delete(f"/api/files/{document.pk}", REMOTE_ADDR=CLIENT_IP).status_code in (200, 204)

    # DELETE moves it to the trash; emptying the trash deletes it for good.
    [trashed] = entries(AuditAction.DOCUMENT_TRASHED)
    assert (trashed.actor, str(trashed.ip)) == (owner, CLIENT_IP)
    assert trashed.target == f"document {document.pk} contract.pdf"
    assert client.delete("/api/trash", REMOTE_ADDR=CLIENT_IP).json() == {"deleted": 1}
    [deleted] = entries(AuditAction.DOCUMENT_DELETED)
    assert (deleted.actor, str(deleted.ip)) == (owner, CLIENT_IP)
    assert deleted.target == f"document {document.pk} contract.pdf"


def test_changes_in_the_admin_are_recorded_and_operators_read_the_trail_there(client):
    operator = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(operator)
    form = {"every": "5", "period": "minutes"}
    # The page's inline list of tasks on this interval, empty.
    form |= {"periodictask_set-TOTAL_FORMS": "0", "periodictask_set-INITIAL_FORMS": "0"}
    added = client.post("/admin/django_celery_beat/intervalschedule/add/", form)
    assert added.status_code == 302

    [change] = entries(AuditAction.ADMIN_CHANGE)
    assert change.actor == operator
    assert change.detail["change"] == "added"
    assert "every 5 minutes" in change.target

    listing = client.get("/admin/accounts/auditlog/")
    assert listing.status_code == 200
    assert "changed in the admin" in listing.content.decode()
    assert client.get("/admin/accounts/auditlog/add/").status_code == 403


def test_an_operator_without_model_permissions_can_read_but_not_change_the_trail(client, operator):
    client.force_login(operator)  # staff, but given no model permissions
    assert client.get("/admin/accounts/auditlog/").status_code == 200
    entry = AuditLog.objects.first() or AuditLog.objects.create(action=AuditAction.LOGIN, actor_name="x")
    assert client.post(f"/admin/accounts/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditLog.objects.filter(pk=entry.pk).exists()
