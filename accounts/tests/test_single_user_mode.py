"""AUTH_ENABLED=false: one local user, no login, for a laptop. Run with the real settings
in a fresh process, since the mode changes the middleware and the API's authenticators."""

from __future__ import annotations

import json

from conftest import run_manage

PROBE = """
import json
from django.test import Client
from documents.models import Document
client = Client(enforce_csrf_checks=True, HTTP_HOST="localhost")
whoami = client.get("/api/whoami")
token = client.post("/api/api-tokens/", {"name": "script"}, content_type="application/json")
page = client.get("/")
print(json.dumps({
    "whoami": [whoami.status_code, whoami.json()],
    "token": [token.status_code, sorted(token.json())],
    "page_offers_login": "Log in" in page.content.decode(),
    "files": client.get("/api/files").status_code,
}))
"""


def test_without_auth_every_request_is_the_local_operator_and_needs_no_csrf_token(embedded_env):
    embedded_env.update({"AUTH_ENABLED": "false", "DEBUG": "true", "ADMIN_USERNAME": "me"})
    assert run_manage(embedded_env, "migrate", "--no-input").returncode == 0
    result = run_manage(embedded_env, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    status, whoami = seen["whoami"]
    assert status == 200
    assert whoami["display_name"] == "me"
    assert whoami["is_admin"] is True
    assert seen["token"] == [201, ["id", "name", "token", "token_prefix"]]
    assert seen["page_offers_login"] is False
    assert seen["files"] == 200


def test_with_auth_the_same_requests_are_refused(embedded_env):
    embedded_env.update({"DEBUG": "true"})
    assert run_manage(embedded_env, "migrate", "--no-input").returncode == 0
    result = run_manage(embedded_env, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["whoami"][0] == 401
    assert seen["token"][0] == 401
    assert seen["files"] == 401
    assert seen["page_offers_login"] is True
