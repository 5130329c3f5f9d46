"""Schemathesis against /api/schema/: no 5xx, and every answer is what the schema says.

The schema is loaded from the running application (in-process WSGI, no server), and every
operation in it is called with generated requests: valid and invalid parameters and bodies,
other methods, no or wrong credentials. Each answer must not be a server error, and its
status, Content-Type and body must be documented for that operation. Beyond the shape, each
JSON answer of an API view must have been rendered by the very serializer the schema names
for it: a view that builds its answer by hand, or renders another serializer than it
declares, fails even when the body happens to fit the schema.

The caller is an operator with an operator-scoped API token, so the staff-only route
answers too. The routes that take only a session (creating tokens) are called once with
that token, which they must refuse as documented, and once with a signed-in session.

Requests reach the test database (the ``db`` fixture's transaction), where the documents,
destinations and sources the fixtures made wait to be found: a hook hands half of the
generated ids over to them, so operations on one of them answer with it, not only with 404.
No task reaches a broker: on_commit never runs inside the test's transaction, and ``sent``
catches it if it did.

Run time is bounded: at most 25 generated examples per operation, no deadline (the first
requests of a test warm caches), and derandomized, so a failure reproduces on every run.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponseBase
from django.test import Client, override_settings
from hypothesis import strategies as st
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import ListSerializer
from rest_framework.views import APIView
from schemathesis import Case, HookContext
from schemathesis.checks import ignored_auth, negative_data_rejection, positive_data_acceptance

from accounts.models import User
from accounts.services import token_create
from destinations.services import destination_create
from docuelevate import addresses
from docuelevate.api import component_name
from docuelevate.celery import app as celery_app
from docuelevate.wsgi import application
from documents.models import Document
from documents.pipeline.runner import pipeline_run_sync
from documents.services import document_ingest
from documents.tests.samples import Samples
from sources.services import source_create

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

# Operations that refuse API tokens and take only a signed-in session.
SESSION_ONLY = ["api_tokens_create", "mobile_generate_token"]
# Operations on one document; only they need one that went through the pipeline.
ON_ONE_DOCUMENT = r"\{document_id\}"

EXCLUDED_CHECKS = [
    # "Schema-valid request rejected": many valid-looking requests are refused for reasons a
    # schema cannot state, and answered with a documented 400 or 415: content that is not a
    # supported file type, a URL that is not public, a step name that does not exist.
    positive_data_acceptance,
    # "Schema-violating request accepted": the API reads query strings and forms as DRF
    # does, where an empty value of an optional field (``?sort_order=``, as an HTML form
    # sends it) means "not given" and falls back to the documented default.
    negative_data_rejection,
]

FUZZING = hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,  # derandomized runs have nothing to replay; no .hypothesis/ folder
    # Fixtures are made once per operation, on purpose: every example adds to the same rows.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)

# Ids of the rows the running test made, by path parameter; read while Hypothesis draws.
KNOWN_IDS: dict[str, list[Any]] = {}


@schema.hook
def flatmap_path_parameters(context: HookContext, path_parameters: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Half the time, swap a generated id for the id of a row the test made."""
    name = next((name for name in path_parameters or {} if KNOWN_IDS.get(name)), None)
    if name is None:
        return st.just(path_parameters)
    known = st.sampled_from(KNOWN_IDS[name]).map(lambda known_id: {**path_parameters, name: known_id})
    return st.one_of(st.just(path_parameters), known)


@pytest.fixture
def connections_kept_open() -> Iterator[None]:
    """Let in-process requests share the test's database connection.

    Django's handler closes "old" connections when a request starts and ends; inside the
    test's transaction that would close the connection and lose the transaction. Django's
    own test client disconnects the same receivers.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def no_worker_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker runs here; the queue stats' broadcast ping would wait a second each call."""
    monkeypatch.setattr(celery_app.control, "ping", lambda timeout=1.0: [])


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """process-url and destinations stay on this machine: every host name resolves to
    192.0.2.1 (reserved for documentation), which the rule against private addresses
    (``docuelevate.addresses``) refuses before connecting."""

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("192.0.2.1", port))]

    resolver = SimpleNamespace(getaddrinfo=resolve, gaierror=socket.gaierror, SOCK_STREAM=socket.SOCK_STREAM)
    monkeypatch.setattr(addresses, "socket", resolver)


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def no_rate_limits(settings: Any) -> None:
    """Fuzzing sends hundreds of requests per operation from one client; the limits would
    answer 429 long before the shapes are explored (they have their own tests)."""
    settings.RATE_LIMITING_ENABLED = False


@pytest.fixture
def api_world(
    no_rate_limits: None,
    connections_kept_open: None,
    no_worker_ping: None,
    no_internet: None,
    sent: list[dict[str, Any]],
    document_storage: Path,
    operator: User,
    other_user: User,
    samples: Samples,
    tmp_path: Path,
) -> Iterator[dict[str, Document]]:
    """Documents in several states, and the ids the path parameters may take."""

    def ingest(owner: User, name: str, filename: str | None = None) -> Document:
        chunks = [(samples / name).read_bytes()]
        return document_ingest(owner=owner, chunks=chunks, filename=filename or name, enqueue=False).document

    documents = {
        "pdf": ingest(operator, "blank.pdf"),
        "duplicate": ingest(operator, "blank.pdf", "again.pdf"),
        "image": ingest(other_user, "scan.png"),
    }
    Document.objects.filter(pk=documents["image"].pk).update(legal_hold=True)
    # A system-wide destination the operator manages, on a closed port of this machine (a
    # test or a delivery there fails at once), and another user's, which they may not see.
    keys = {"access_key_id": "AKIAFUZZ", "secret_access_key": "fuzzing-secret-key-0123456789"}
    system = destination_create(
        kind="s3", name="everyone's", owner=None, secrets=keys,
        settings={"bucket": "fuzz", "endpoint_url": f"http://127.0.0.1:{closed_port()}"},
    )  # fmt: skip
    theirs = destination_create(
        kind="s3", name="theirs", owner=other_user, settings={"bucket": "fuzz"}, secrets=keys
    )
    KNOWN_IDS["destination_id"] = [system.pk, theirs.pk]
    # A system-wide watched folder the operator manages (its test reads a folder of the
    # test's own), and another user's mailbox, which they may not see (made while its
    # host's stand-in address is allowed; it is never contacted).
    scans = tmp_path / "scans"
    scans.mkdir()
    folder = source_create(kind="watch", name="everyone's scans", owner=None, settings={"path": str(scans)})
    with override_settings(URL_FETCH_ALLOWED_NETWORKS=[ipaddress.ip_network("192.0.2.0/24")]):
        mailbox = source_create(
            kind="imap", name="their mail", owner=other_user, secrets={"password": "fuzzing-password"},
            settings={"host": "mail.example.invalid", "username": "them"},
        )  # fmt: skip
    KNOWN_IDS["source_id"] = [folder.pk, mailbox.pk]
    other_token, _ = token_create(user=other_user, name="not the operator's")
    spare_token, _ = token_create(user=operator, name="to be revoked")
    KNOWN_IDS["document_id"] = sorted(document.pk for document in documents.values())
    # Not the token the requests carry: revoking that one would turn the rest into 401s.
    KNOWN_IDS["token_id"] = [str(spare_token.pk), str(other_token.pk)]
    yield documents
    KNOWN_IDS.clear()


@pytest.fixture
def bearer(operator: User) -> dict[str, str]:
    """The Authorization header with an operator-scoped token of the operator.

    Given to each call as a header, which schemathesis knows for real credentials: its
    ``ignored_auth`` check repeats successful calls without them and with a wrong token.
    """
    _, raw_token = token_create(user=operator, name="schemathesis", operator_scope=True)
    return {"Authorization": f"Bearer {raw_token}"}


# --- Answers rendered by the serializer the schema names ----------------------------------------


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> list[HttpResponseBase]:
    """Every answer an API view gives, as the view gave it (its ``data`` not yet JSON)."""
    given: list[HttpResponseBase] = []
    finalize = APIView.finalize_response

    def recorded(view: APIView, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        given.append(response)
        return finalize(view, request, response, *args, **kwargs)

    monkeypatch.setattr(APIView, "finalize_response", recorded)
    return given


def documented_body(case: Case, status_code: int) -> tuple[bool, set[str]] | None:
    """Whether the schema documents a list for this answer, and the components its JSON
    body may be; None when it documents no JSON body for this status."""
    documented = case.operation.definition.raw["responses"].get(str(status_code), {})
    body = documented.get("content", {}).get("application/json")
    if body is None:
        return None
    many = body["schema"].get("type") == "array"
    reference = (body["schema"]["items"] if many else body["schema"]).get("$ref")
    assert reference, f"{case.operation.label} {status_code}: the schema describes a body no serializer names"
    name = reference.rsplit("/", 1)[-1]
    component = case.operation.schema.raw_schema["components"]["schemas"][name]
    # An upload answers in one of two shapes (a PolymorphicProxySerializer): either may render it.
    choices = {choice["$ref"].rsplit("/", 1)[-1] for choice in component.get("oneOf", [])}
    return many, choices or {name}


def assert_rendered_by_the_documented_serializer(
    case: Case, response: schemathesis.Response, answers: list[HttpResponseBase]
) -> None:
    if case.method.upper() != case.operation.method.upper():
        return  # another method sent to the route (DRF answers OPTIONS itself): not this operation
    documented = documented_body(case, response.status_code)
    if documented is None:
        return  # no JSON body is documented for this status: a file, a 204
    label = f"{case.operation.label} answered {response.status_code}"
    if not answers:
        # Django, not a view, answered: an id the URL pattern refuses, or a body over the
        # limit (docuelevate.views.error_response).
        assert response.status_code in (404, 413), f"{label}, but no API view did"
        return
    answer = answers[0]  # any later ones answered checks that repeat the request (ignored_auth)
    assert answer.status_code == response.status_code, f"{label}, its view {answer.status_code}"
    # Serializer.data keeps the serializer that rendered it; a dict made by hand has none.
    serializer = getattr(getattr(answer, "data", None), "serializer", None)
    assert serializer is not None, f"{label} with a body no serializer rendered"
    many = isinstance(serializer, ListSerializer)
    rendered_by = type(serializer.child if many else serializer)
    documented_many, components = documented
    assert (many, component_name(rendered_by.__name__)) in {(documented_many, name) for name in components}, (
        f"{label} through {rendered_by.__name__}{' (a list)' if many else ''}; "
        f"the schema names {sorted(components)}{' (a list)' if documented_many else ''}"
    )


# --- The operations ---------------------------------------------------------------------------


@schema.exclude(path_regex=ON_ONE_DOCUMENT).parametrize()
@FUZZING
def test_every_operation_answers_an_operator_token_as_documented(
    case: Case, api_world: dict[str, Document], bearer: dict[str, str], answers: list[HttpResponseBase]
) -> None:
    answers.clear()
    response = case.call_and_validate(headers=bearer, excluded_checks=EXCLUDED_CHECKS)
    assert_rendered_by_the_documented_serializer(case, response, answers)


@pytest.fixture
def processed(api_world: dict[str, Document], engines: None) -> Document:
    """The PDF after the real pipeline: steps, logs, metadata and a processed file to serve.

    Only the operations on one document ask for it; the others need not wait for OCR.
    """
    return pipeline_run_sync(document_id=api_world["pdf"].pk)


@schema.include(path_regex=ON_ONE_DOCUMENT).parametrize()
@FUZZING
def test_every_operation_on_a_document_answers_as_documented(
    case: Case, processed: Document, bearer: dict[str, str], answers: list[HttpResponseBase]
) -> None:
    answers.clear()
    response = case.call_and_validate(headers=bearer, excluded_checks=EXCLUDED_CHECKS)
    assert_rendered_by_the_documented_serializer(case, response, answers)


# Any 32 letters and digits are a valid CSRF secret; the header only has to repeat the cookie.
CSRF_SECRET = "schemathesisCsrfSecret0123456789"


@pytest.fixture
def session_cookies(operator: User) -> dict[str, str]:
    """A signed-in session of the operator and a CSRF cookie, as a browser holds them."""
    client = Client()
    client.force_login(operator)
    return {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF_SECRET}


@schema.include(operation_id=SESSION_ONLY).parametrize()
@FUZZING
def test_the_session_only_operations_answer_a_signed_in_session_as_documented(
    case: Case,
    api_world: dict[str, Document],
    session_cookies: dict[str, str],
    answers: list[HttpResponseBase],
) -> None:
    answers.clear()
    response = case.call_and_validate(
        cookies=session_cookies,
        headers={"X-CSRFToken": CSRF_SECRET},
        # Cookies handed to the call look generated to this check, so it would expect the
        # session to be refused. Refusing callers without a session is tested with the token
        # above and in accounts/tests/test_api.py.
        excluded_checks=[*EXCLUDED_CHECKS, ignored_auth],
    )
    assert_rendered_by_the_documented_serializer(case, response, answers)
