"""Rate limits: 429 with Retry-After once a client spent its group's budget.

Requests go through the whole middleware stack with Django's test client, counted in the
configured backend (Redis when the run sets REDIS_URL, else files), each test with
counters of its own. The live tests run gunicorn with two workers and show that a worker
which has counted nothing itself still refuses the request after the limit.

Rates in these tests are per hour, not per minute: a window that turned over in the middle
of a test would hand out a fresh budget and make the test fail by chance.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client
from django.test.client import RequestFactory

import docuelevate.settings as project_settings
from accounts.models import User
from accounts.services import token_create
from conftest import LiveServer, current_database_url, log_tail, run_manage, server_accepted, wait_until
from docuelevate.env import EnvError, env_rate
from docuelevate.ratelimit import AUTH, DEFAULT, UPLOAD, request_group

GENEROUS = "1000/h"
LIMIT = 2


@pytest.fixture(autouse=True)
def own_counters(settings: Any, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Counters no other test (of this run or of a run beside it) can spend or reset.

    The backend stays the configured one: with Redis a key prefix of this test's own, so
    nothing is flushed; with files a folder under tmp_path. allauth's own limits, in the
    default cache, start empty too.
    """
    # From the settings module itself: another fixture may already have replaced the cache.
    configured = dict(project_settings.CACHES["ratelimit"])
    if configured["BACKEND"].endswith("FileBasedCache"):
        configured["LOCATION"] = str(tmp_path / "ratelimit-cache")
    else:
        configured["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    locmem = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": request.node.nodeid}
    settings.CACHES = {"default": locmem, "ratelimit": configured}
    settings.RATE_LIMITING_ENABLED = True
    settings.RATE_LIMIT_DEFAULT = settings.RATE_LIMIT_UPLOAD = settings.RATE_LIMIT_AUTH = GENEROUS


def assert_refused(response: Any, *, period: int = 3600) -> None:
    """A 429 that tells the client when to come back, in whole seconds within the window."""
    assert response.status_code == 429, response.content[:500]
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= period
    if response.wsgi_request.path_info.startswith("/api/"):
        assert response["Content-Type"] == "application/json"
        assert json.loads(response.content) == {
            "detail": f"Too many requests; try again in {retry_after} seconds."
        }
    else:
        assert b"Too many requests" in response.content


def assert_served(response: Any) -> None:
    assert response.status_code != 429, response.content[:500]
    assert "Retry-After" not in response


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Groups ------------------------------------------------------------------------------------

# (setting, method, path, data, signed in): each route spends from its group's budget.
ROUTES = [
    ("RATE_LIMIT_AUTH", "post", "/accounts/login/", {"login": "nobody", "password": "wrong-password"}, False),
    ("RATE_LIMIT_AUTH", "post", "/accounts/signup/", {"username": "someone"}, False),
    ("RATE_LIMIT_AUTH", "post", "/accounts/password/reset/", {"email": "nobody@example.org"}, False),
    ("RATE_LIMIT_AUTH", "post", "/accounts/password/reset/key/1-abc/", {"password1": "x"}, False),
    ("RATE_LIMIT_AUTH", "get", "/accounts/oidc/authenticate/", {}, False),
    ("RATE_LIMIT_AUTH", "get", "/accounts/oidc/callback/", {"code": "c", "state": "s"}, False),
    ("RATE_LIMIT_AUTH", "post", "/admin/login/", {"username": "nobody", "password": "wrong"}, False),
    ("RATE_LIMIT_AUTH", "post", "/accounts/password/change/", {"oldpassword": "guess"}, True),
    ("RATE_LIMIT_AUTH", "post", "/accounts/reauthenticate/", {"password": "guess"}, True),
    ("RATE_LIMIT_AUTH", "post", "/api/api-tokens/", {"name": "laptop"}, True),
    ("RATE_LIMIT_AUTH", "post", "/api/api-tokens", {"name": "laptop"}, True),
    ("RATE_LIMIT_AUTH", "post", "/api-tokens", {"name": "laptop"}, True),
    ("RATE_LIMIT_AUTH", "post", "/api/mobile/generate-token", {"device_name": "phone"}, True),
    ("RATE_LIMIT_UPLOAD", "post", "/api/ui-upload", {}, True),
    ("RATE_LIMIT_UPLOAD", "post", "/api/files/upload", {}, True),
    ("RATE_LIMIT_UPLOAD", "post", "/api/process-url", {}, True),
    ("RATE_LIMIT_DEFAULT", "get", "/api/whoami", {}, True),
    ("RATE_LIMIT_DEFAULT", "get", "/api/files", {}, True),
    ("RATE_LIMIT_DEFAULT", "get", "/api/whoami", {}, False),
    ("RATE_LIMIT_DEFAULT", "get", "/api/no-such-route", {}, False),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("setting", "method", "path", "data", "as_user"), ROUTES)
def test_each_route_is_refused_with_retry_after_once_its_groups_budget_is_spent(
    settings: Any, owner: User, setting: str, method: str, path: str, data: dict[str, str], as_user: bool
) -> None:
    setattr(settings, setting, f"{LIMIT}/h")
    client = signed_in(owner) if as_user else Client()
    call = getattr(client, method)
    for _ in range(LIMIT):
        assert_served(call(path, data))
    assert_refused(call(path, data))


@pytest.mark.django_db
def test_a_refused_sign_in_page_answers_in_the_sites_look(settings: Any) -> None:
    settings.RATE_LIMIT_AUTH = "1/h"
    client = Client()
    client.post("/accounts/login/", {"login": "nobody", "password": "wrong-password"})
    refused = client.post("/accounts/login/", {"login": "nobody", "password": "wrong-password"})
    assert_refused(refused)
    assert refused["Content-Type"].startswith("text/html")
    # Looking at the form is not an attempt: it stays open while sign-ins are refused.
    assert client.get("/accounts/login/").status_code == 200


@pytest.mark.django_db
def test_once_the_sign_in_form_refuses_an_address_the_admin_login_refuses_it_too(
    settings: Any, operator: User
) -> None:
    settings.RATE_LIMIT_AUTH = f"{LIMIT}/h"
    operator.set_password("the-right-operator-password")
    operator.save()
    client = Client()
    for _ in range(LIMIT):
        assert_served(client.post("/accounts/login/", {"login": "operator", "password": "wrong-password"}))
    assert_refused(client.post("/accounts/login/", {"login": "operator", "password": "wrong-password"}))

    # The flood that used to go on here: wrong passwords, then the right one.
    for _ in range(15):
        wrong = {"username": "operator", "password": "wrong-password", "next": "/admin/"}
        assert_refused(client.post("/admin/login/?next=/admin/", wrong))
    right = {"username": "operator", "password": "the-right-operator-password", "next": "/admin/"}
    assert_refused(client.post("/admin/login/?next=/admin/", right))
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


# Each way in that an address without a session can try, after the form spent its budget.
ANONYMOUS_WAYS_IN = [
    ("post", "/admin/login/", {"username": "operator", "password": "guess"}),
    ("post", "/accounts/login/", {"login": "operator", "password": "guess"}),
    ("post", "/accounts/signup/", {"username": "someone"}),
    ("post", "/accounts/password/reset/", {"email": "operator@example.com"}),
    ("post", "/accounts/password/reset/key/1-abc/", {"password1": "x"}),
    ("post", "/accounts/login/code/confirm/", {"code": "123456"}),
    ("get", "/accounts/oidc/authenticate/", {}),
    ("get", "/accounts/oidc/callback/", {"code": "guess", "state": "guess"}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "data"), ANONYMOUS_WAYS_IN)
def test_every_way_to_sign_in_spends_the_addresss_one_budget(
    settings: Any, method: str, path: str, data: dict[str, str]
) -> None:
    settings.RATE_LIMIT_AUTH = f"{LIMIT}/h"
    client = Client()
    for _ in range(LIMIT):
        assert_served(client.post("/accounts/login/", {"login": "operator", "password": "wrong-password"}))
    assert_refused(getattr(client, method)(path, data))


# Each way a signed-in user can check their password again or mint a credential.
SIGNED_IN_WAYS_IN = [
    ("/api/api-tokens", {"name": "laptop"}),
    ("/api-tokens", {"name": "laptop"}),
    ("/api/mobile/generate-token", {"device_name": "phone"}),
    ("/accounts/password/change/", {"oldpassword": "guess", "password1": "x", "password2": "x"}),
    ("/accounts/reauthenticate/", {"password": "guess"}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "data"), SIGNED_IN_WAYS_IN)
def test_every_way_to_make_a_credential_spends_the_users_one_budget(
    settings: Any, owner: User, path: str, data: dict[str, str]
) -> None:
    settings.RATE_LIMIT_AUTH = f"{LIMIT}/h"
    client = signed_in(owner)
    for _ in range(LIMIT):
        assert_served(client.post("/api/api-tokens", {"name": "laptop"}))
    assert_refused(client.post(path, data))


@pytest.mark.django_db
def test_uploads_share_one_budget_and_do_not_spend_the_rest_of_the_api(settings: Any, owner: User) -> None:
    settings.RATE_LIMIT_UPLOAD = "3/h"
    settings.RATE_LIMIT_DEFAULT = "2/h"
    client = signed_in(owner)
    for route in ("/api/ui-upload", "/api/files/upload", "/api/process-url"):
        assert_served(client.post(route, {}))
    assert_refused(client.post("/api/ui-upload", {}))

    assert client.get("/api/whoami").status_code == 200
    assert client.get("/api/whoami").status_code == 200
    assert_refused(client.get("/api/whoami"))


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("POST", "/accounts/login/", AUTH),
        ("GET", "/accounts/login/", None),
        ("POST", "/accounts/logout/", None),
        ("POST", "/accounts/oidc/logout/", None),
        ("POST", "/admin/login/", AUTH),
        ("GET", "/admin/login/", None),
        ("POST", "/admin/accounts/user/3/change/", None),
        ("GET", "/accounts/oidc/callback/", AUTH),
        ("GET", "/accounts/google/login/callback/", AUTH),
        ("POST", "/accounts/login/code/confirm/", AUTH),
        ("POST", "/api-tokens", AUTH),
        ("POST", "/api-tokens/4/revoke", None),
        ("GET", "/api/api-tokens/", DEFAULT),
        ("DELETE", "/api/api-tokens/4", DEFAULT),
        ("GET", "/api/ui-upload", DEFAULT),
        ("POST", "/api/files/upload/", UPLOAD),
        ("POST", "/api/files/7/reprocess", DEFAULT),
        ("GET", "/api/diagnostic/healthz/live", None),
        ("GET", "/api/diagnostic/healthz/ready/", None),
        ("GET", "/api/diagnostic/health", DEFAULT),
        ("GET", "/metrics", None),
        ("GET", "/files", None),
        ("GET", "/static/app.css", None),
    ],
)
def test_requests_fall_into_the_documented_groups(method: str, path: str, group: str | None) -> None:
    assert request_group(RequestFactory().generic(method, path)) == group


# --- Who is counted ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_user_has_a_budget_of_their_own(settings: Any, owner: User, other_user: User) -> None:
    settings.RATE_LIMIT_DEFAULT = "1/h"
    mine = signed_in(owner)
    assert mine.get("/api/whoami").status_code == 200
    assert_refused(mine.get("/api/whoami"))
    assert signed_in(other_user).get("/api/whoami").status_code == 200


@pytest.mark.django_db
def test_another_address_has_a_budget_of_its_own(settings: Any) -> None:
    settings.RATE_LIMIT_DEFAULT = "1/h"
    client = Client()
    assert client.get("/api/whoami", REMOTE_ADDR="203.0.113.5").status_code == 401
    assert_refused(client.get("/api/whoami", REMOTE_ADDR="203.0.113.5"))
    assert client.get("/api/whoami", REMOTE_ADDR="203.0.113.6").status_code == 401


@pytest.mark.django_db
def test_one_ipv6_network_of_a_subscriber_shares_a_budget(settings: Any) -> None:
    settings.RATE_LIMIT_DEFAULT = "1/h"
    client = Client()
    assert client.get("/api/whoami", REMOTE_ADDR="2001:db8:0:7::1").status_code == 401
    assert_refused(client.get("/api/whoami", REMOTE_ADDR="2001:db8:0:7::beef"))
    assert client.get("/api/whoami", REMOTE_ADDR="2001:db8:0:8::1").status_code == 401


@pytest.mark.django_db
def test_each_api_token_has_its_own_budget_and_is_refused_without_a_database_query(
    settings: Any, owner: User, django_assert_num_queries: Callable[..., Any]
) -> None:
    settings.RATE_LIMIT_DEFAULT = "1/h"
    _, first = token_create(user=owner, name="laptop")
    _, second = token_create(user=owner, name="phone")
    client = Client()
    assert client.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 200
    with django_assert_num_queries(0):
        assert_refused(client.get("/api/whoami", HTTP_AUTHORIZATION=f"Token {first}"))
    assert client.get("/api/whoami", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200
    # The caller's address has its own budget, untouched by the token's requests.
    assert client.get("/api/whoami").status_code == 401


@pytest.mark.django_db
def test_x_forwarded_for_is_ignored_without_a_declared_proxy(settings: Any) -> None:
    settings.SECURE_PROXY = False
    settings.RATE_LIMIT_DEFAULT = "1/h"
    client = Client()
    assert client.get("/api/whoami", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 401
    # A client cannot buy a fresh budget by making up a header.
    assert_refused(client.get("/api/whoami", HTTP_X_FORWARDED_FOR="198.51.100.2"))


@pytest.mark.django_db
def test_behind_the_declared_proxy_the_address_it_appended_last_is_the_client(settings: Any) -> None:
    settings.SECURE_PROXY = True
    settings.RATE_LIMIT_DEFAULT = "1/h"
    client = Client()
    assert client.get("/api/whoami", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 401
    # Entries before the last are the client's own words; a made-up one changes nothing.
    assert_refused(client.get("/api/whoami", HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.1"))
    assert client.get("/api/whoami", HTTP_X_FORWARDED_FOR="198.51.100.1, 198.51.100.2").status_code == 401


# --- Exemptions and switches -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/diagnostic/healthz/live", "/api/diagnostic/healthz/ready", "/metrics"]
)
def test_probes_are_never_limited(settings: Any, path: str) -> None:
    settings.RATE_LIMIT_DEFAULT = settings.RATE_LIMIT_AUTH = "1/h"
    client = Client()
    for _ in range(5):
        assert_served(client.get(path))


@pytest.mark.django_db
def test_turning_rate_limiting_off_lets_every_request_through(settings: Any, owner: User) -> None:
    settings.RATE_LIMITING_ENABLED = False
    settings.RATE_LIMIT_DEFAULT = settings.RATE_LIMIT_AUTH = "1/h"
    client = signed_in(owner)
    for _ in range(5):
        assert client.get("/api/whoami").status_code == 200
        assert_served(Client().post("/accounts/login/", {"login": "nobody", "password": "wrong-password"}))


@pytest.mark.django_db
def test_an_unreachable_cache_leaves_the_api_working(
    settings: Any, owner: User, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    unreachable = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
    }
    settings.CACHES = {**settings.CACHES, "ratelimit": unreachable}
    settings.RATE_LIMIT_DEFAULT = "1/h"
    client = signed_in(owner)
    for _ in range(3):
        assert client.get("/api/whoami").status_code == 200
    assert "Rate limits not enforced: the cache failed" in caplog.text


# --- Settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "rate"), [("100/m", "100/m"), (" 5/10S ", "5/10s"), ("1/d", "1/d")])
def test_a_rate_is_a_count_per_period(raw: str, rate: str) -> None:
    assert env_rate("RATE_LIMIT_DEFAULT", "100/m", environ={"RATE_LIMIT_DEFAULT": raw}) == rate


def test_an_unset_rate_gives_the_default() -> None:
    assert env_rate("RATE_LIMIT_UPLOAD", "600/m", environ={}) == "600/m"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "RATE_LIMIT_AUTH='abc' is not a rate"),
        ("100", "RATE_LIMIT_AUTH='100' is not a rate"),
        ("100/minute", "is not a rate"),
        ("10/0m", "is not a rate"),
        ("0/m", "RATE_LIMIT_AUTH='0/m' would refuse every request"),
    ],
)
def test_a_malformed_rate_is_refused_naming_the_variable(raw: str, message: str) -> None:
    with pytest.raises(EnvError, match=re.escape(message)):
        env_rate("RATE_LIMIT_AUTH", "10/m", environ={"RATE_LIMIT_AUTH": raw})


def test_a_malformed_rate_stops_start_up(embedded_env: dict[str, str]) -> None:
    embedded_env["RATE_LIMIT_UPLOAD"] = "lots"
    result = run_manage(embedded_env, "check")
    assert result.returncode != 0
    assert "RATE_LIMIT_UPLOAD='lots' is not a rate" in result.stderr


# --- Live: gunicorn with two workers -------------------------------------------------------------


def send_head(connection: socket.socket) -> None:
    connection.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n")


def finish_and_read(connection: socket.socket, token: str) -> tuple[int, dict[str, str], bytes]:
    """Send the rest of the request head, then read the answer until the server closes."""
    connection.sendall(f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
    raw = b""
    while chunk := connection.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), headers, body


def served_by(log: Path, count: int) -> list[tuple[int, int]]:
    """(worker pid, status) of the first ``count`` answered token requests in the access log.

    The start-up check of ``start_gunicorn`` also asks /api/whoami, without a token: 401.
    """
    pattern = re.compile(r'^<(\d+)> "GET /api/whoami HTTP/1\.1" (200|429)$', re.MULTILINE)

    def logged() -> list[tuple[int, int]] | None:
        found = [(int(pid), int(status)) for pid, status in pattern.findall(log.read_text(errors="replace"))]
        return found if len(found) >= count else None

    return wait_until(
        logged, timeout=10, what=f"{count} requests in the access log", details=lambda: log_tail(log)
    )


@pytest.fixture
def live_env(transactional_db: None, process_env: dict[str, str]) -> dict[str, str]:
    """gunicorn on this test's database, five requests per hour on the API, and the pid of
    the worker that answered in each access-log line."""
    env = dict(process_env)
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=current_database_url(),
        RATE_LIMITING_ENABLED="true",
        RATE_LIMIT_DEFAULT="5/h",
        GUNICORN_CMD_ARGS="""--access-logformat '%(p)s "%(r)s" %(s)s'""",
    )
    return env


@pytest.mark.parametrize("backend", ["redis", "files"])
def test_the_sixth_request_is_refused_by_the_gunicorn_worker_that_counted_none_of_the_five(
    backend: str,
    request: pytest.FixtureRequest,
    owner: User,
    live_env: dict[str, str],
    start_gunicorn: Callable[[dict[str, str]], LiveServer],
) -> None:
    if backend == "redis":
        live_env["REDIS_URL"] = request.getfixturevalue("redis_url")  # emptied first
    _, token = token_create(user=owner, name="live")
    server = start_gunicorn(live_env)
    host, port = server.url.removeprefix("http://").split(":")

    # A sync worker serves one connection at a time. Holding one worker on a request whose
    # head is not finished sends the next five, each on a fresh connection, to the other.
    with socket.create_connection((host, int(port)), timeout=30) as held:
        send_head(held)
        wait_until(lambda: server_accepted(held), timeout=30, what="a worker to accept the held request")
        for number in range(1, 6):
            answer = requests.get(
                f"{server.url}/api/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            assert answer.status_code == 200, f"request {number}: {answer.text}\n{log_tail(server.log)}"
        status, headers, body = finish_and_read(held, token)

    assert status == 429, f"{body!r}\n{log_tail(server.log)}"
    assert 1 <= int(headers["retry-after"]) <= 3600
    assert headers["content-type"] == "application/json"
    assert set(json.loads(body)) == {"detail"}
    served = served_by(server.log, 6)
    assert [status for _, status in served] == [200] * 5 + [429], log_tail(server.log)
    five_pids = {pid for pid, _ in served[:5]}
    assert len(five_pids) == 1, served
    assert served[5][0] not in five_pids, served
