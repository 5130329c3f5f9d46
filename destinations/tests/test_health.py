"""The credentials check against a real S3 API and a server that never answers: every
enabled destination's health recorded, a broken or silent one kept to itself."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from destinations.health import destinations_check_credentials
from destinations.kinds.s3 import S3Kind
from destinations.models import Destination, HealthStatus
from destinations.services import deliveries_schedule, delivery_run, destination_create
from destinations.tasks import destinations_check_credentials_task
from destinations.tests.conftest import S3_KEYS
from documents.models import FailureKind

CONTENT = b"%PDF-1.7 delivered bytes\n%%EOF\n"


class SilentServer:
    """Takes TCP connections on 127.0.0.1 and never answers, as a server hung behind its
    port does; every connection stays open until ``close``."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self._listener.accept()
            except OSError:
                return  # closed
            self.connections.append(connection)
            self.connected.set()

    def close(self) -> None:
        # shutdown, not only close: it wakes the accept() blocked in the other thread.
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=10)
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()  # the abandoned check's socket errors out, and its thread ends
    for thread in threading.enumerate():
        if thread.name.startswith("destination-check-"):
            thread.join(timeout=60)
            assert not thread.is_alive(), f"{thread.name} still hangs on a closed server"


def health(destination: Destination) -> tuple[str, str, str]:
    destination.refresh_from_db()
    return destination.health_status, destination.health_error_kind, destination.health_error


def test_the_check_marks_a_working_destination_ok_and_a_broken_one_failing_leaving_no_file(
    make_s3_destination, bucket
):
    working = make_s3_destination(name="fine", folder="archive")
    broken = make_s3_destination(name="gone", bucket_name="no-such-bucket")
    disabled = make_s3_destination(name="off", bucket_name="no-such-bucket", enabled=False)

    outcomes = destinations_check_credentials()

    assert [outcome.destination_id for outcome in outcomes] == [working.pk, broken.pk]
    assert health(working) == (HealthStatus.OK, "", "")
    assert working.health_checked_at is not None
    status, kind, error = health(broken)
    assert (status, kind) == (HealthStatus.FAILING, FailureKind.CONFIGURATION)
    assert "The bucket no-such-bucket does not exist" in error
    assert health(disabled)[0] == HealthStatus.UNKNOWN  # not asked
    assert bucket.keys() == []  # the test files are gone again


def test_refused_credentials_mark_the_destination_failing_without_a_word_of_the_secret(
    make_s3_destination, s3_server
):
    wrong_keys = make_s3_destination(
        name="wrong keys",
        keys={"access_key_id": "AKIAUNKNOWNKEY000000", "secret_access_key": "wrong-secret-value-abcdef"},
    )
    s3_server.authentication(enforced=True)
    try:
        destinations_check_credentials()
    finally:
        s3_server.authentication(enforced=False)
    status, kind, error = health(wrong_keys)
    assert (status, kind) == (HealthStatus.FAILING, FailureKind.CONFIGURATION)
    assert "refused the credentials (InvalidAccessKeyId)" in error
    assert "wrong-secret-value-abcdef" not in error


def test_a_check_that_fails_after_a_working_one_marks_the_destination_failing_and_a_delivery_heals_it(
    make_s3_destination, bucket, processed, monkeypatch
):
    destination = make_s3_destination(name="archive")
    destinations_check_credentials()
    assert health(destination)[0] == HealthStatus.OK

    bucket.client.delete_bucket(Bucket=bucket.name)  # gone, as when someone removes it
    destinations_check_credentials()
    assert health(destination)[:2] == (HealthStatus.FAILING, FailureKind.CONFIGURATION)

    bucket.client.create_bucket(Bucket=bucket.name)
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", lambda delivery_id: None)
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    assert delivery_run(delivery_id=delivery_id).outcome == "delivered"
    assert health(destination) == (HealthStatus.OK, "", "")


def test_a_server_that_never_answers_is_marked_failing_in_time_and_holds_up_no_other_destination(
    make_s3_destination, silent_server, settings
):
    # Time enough for the working one to answer on a busy machine; the silent one never does.
    settings.DESTINATION_CHECK_TIMEOUT = 10
    silent = destination_create(
        kind="s3",
        name="silent",
        owner=None,
        settings={"bucket": "b", "endpoint_url": silent_server.endpoint},
        secrets=S3_KEYS,
    )
    working = make_s3_destination(name="fine")

    outcomes = destinations_check_credentials()

    # Cut off by the check's own deadline, long before the client's 60 s read timeout.
    assert silent_server.connected.is_set()
    assert len(outcomes) == 2
    status, kind, error = health(silent)
    assert (status, kind) == (HealthStatus.FAILING, FailureKind.TIMEOUT)
    assert error == "silent did not answer the check within 10 seconds."
    assert health(working)[0] == HealthStatus.OK

    # The next run does not pile a second check on the one still hanging.
    destinations_check_credentials()
    assert len(silent_server.connections) == 1
    assert health(silent)[:2] == (HealthStatus.FAILING, FailureKind.TIMEOUT)
    assert "has not answered the previous check yet" in health(silent)[2]
    assert health(working)[0] == HealthStatus.OK


def test_a_check_that_crashes_marks_its_destination_with_an_internal_error_and_the_others_go_on(
    make_s3_destination, monkeypatch
):
    crashing = make_s3_destination(name="crashing", folder="crash")
    working = make_s3_destination(name="fine", folder="fine")
    original = S3Kind.check

    def check(self: S3Kind, *, folder: str) -> None:
        if folder == "crash":
            raise RuntimeError("an unforeseen answer")
        original(self, folder=folder)

    monkeypatch.setattr(S3Kind, "check", check)

    destinations_check_credentials()

    status, kind, error = health(crashing)
    assert (status, kind) == (HealthStatus.FAILING, FailureKind.INTERNAL_ERROR)
    assert error == "Internal error while checking crashing (RuntimeError); see the server log."
    assert health(working)[0] == HealthStatus.OK


def test_a_destination_the_environment_defines_is_checked_as_its_variables_say(
    db, settings, s3_server, bucket
):
    settings.S3_ENABLED = True
    settings.S3_BUCKET_NAME = "no-such-bucket"
    settings.S3_ENDPOINT_URL = s3_server.endpoint
    settings.AWS_ACCESS_KEY_ID = S3_KEYS["access_key_id"]
    settings.AWS_SECRET_ACCESS_KEY = S3_KEYS["secret_access_key"]

    destinations_check_credentials_task.apply()

    environment = Destination.objects.get(system_key="env:s3")
    assert health(environment)[:2] == (HealthStatus.FAILING, FailureKind.CONFIGURATION)
    settings.S3_BUCKET_NAME = bucket.name
    assert destinations_check_credentials_task.apply().get() == {"checked": 1, "failing": 0}
    assert health(environment)[0] == HealthStatus.OK


def test_a_delivery_that_stays_unreachable_through_every_retry_marks_its_destination_failing(
    processed, owner, settings, monkeypatch
):
    settings.TASK_RETRY_MAX_RETRIES = 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    destination = destination_create(
        kind="s3",
        name="down",
        owner=None,
        settings={"bucket": "b", "endpoint_url": f"http://127.0.0.1:{closed}"},
        secrets=S3_KEYS,
    )
    monkeypatch.setattr("destinations.tasks.delivery_run_task.delay", lambda delivery_id: None)
    (delivery_id,) = deliveries_schedule(document_id=processed(CONTENT).pk)
    assert delivery_run(delivery_id=delivery_id).outcome == "failed"
    status, kind, error = health(destination)
    assert (status, kind) == (HealthStatus.FAILING, FailureKind.TEMPORARY)
    assert "could not be reached" in error
