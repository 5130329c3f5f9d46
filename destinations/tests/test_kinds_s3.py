"""The S3 kind against a real S3 API (moto's server on 127.0.0.1)."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest
from boto3.s3.transfer import TransferConfig

from destinations.kinds import kind_for
from destinations.kinds.base import DeliveryTemporarilyFailed, DestinationMisconfigured, LocalFile
from destinations.kinds.s3 import S3Kind
from destinations.services import destination_create
from destinations.tests.conftest import S3_KEYS, sha256
from docuelevate.addresses import HostRefused
from docuelevate.errors import InvalidInput
from documents.tests.file_server import resolve_as


def s3_kind(s3_server, bucket_name, **options) -> S3Kind:
    return S3Kind(
        bucket=bucket_name, endpoint_url=s3_server.endpoint, region="us-east-1", **S3_KEYS, **options
    )


def local_file(tmp_path, content: bytes, name: str = "file.pdf") -> LocalFile:
    path = tmp_path / name
    path.write_bytes(content)
    return LocalFile(path=path, size=len(content), sha256=sha256(content))


def test_an_upload_lands_whole_with_its_hash_kept_beside_it(s3_server, bucket, tmp_path):
    content = b"%PDF-1.7 an invoice\n"
    with s3_kind(s3_server, bucket.name) as kind:
        uploaded = kind.upload(local_file(tmp_path, content), "archive/2024/invoice.pdf")
        there = kind.stat("archive/2024/invoice.pdf")
    assert uploaded.path == "archive/2024/invoice.pdf"
    assert uploaded.remote_id == f"s3://{bucket.name}/archive/2024/invoice.pdf"
    assert uploaded.remote_version
    assert bucket.read("archive/2024/invoice.pdf") == content
    assert there is not None
    assert (there.size, there.sha256) == (len(content), sha256(content))


def test_a_path_with_nothing_there_is_none(s3_server, bucket):
    with s3_kind(s3_server, bucket.name) as kind:
        assert kind.stat("nothing/here.pdf") is None


def test_a_large_file_goes_up_in_parts_and_arrives_whole(s3_server, bucket, tmp_path):
    content = os.urandom(11 * 1024 * 1024)
    parts = TransferConfig(
        multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2, max_concurrency=2
    )
    writes_before = len(s3_server.writes)
    with s3_kind(s3_server, bucket.name, transfer_config=parts) as kind:
        kind.upload(local_file(tmp_path, content), "big.pdf")
        there = kind.stat("big.pdf")
    assert bucket.read("big.pdf") == content
    assert there is not None
    assert there.sha256 == sha256(content)
    # Start, three parts, complete: a multipart upload, not one put.
    assert len(s3_server.writes) - writes_before == 5


def test_removing_deletes_the_object_and_an_absent_one_is_fine(s3_server, bucket):
    bucket.put("old.pdf", b"old")
    with s3_kind(s3_server, bucket.name) as kind:
        kind.remove("old.pdf")
        kind.remove("never-there.pdf")
    assert bucket.keys() == []


def test_the_connection_check_writes_nothing_that_stays(s3_server, bucket):
    with s3_kind(s3_server, bucket.name) as kind:
        kind.check(folder="archive")
    assert bucket.keys() == []


def test_a_missing_bucket_is_a_configuration_error(s3_server, tmp_path):
    with s3_kind(s3_server, "no-such-bucket-here") as kind, pytest.raises(DestinationMisconfigured) as error:
        kind.upload(local_file(tmp_path, b"x"), "x.pdf")
    assert "no-such-bucket-here does not exist" in error.value.message


def test_refused_credentials_are_a_configuration_error_that_names_no_secret(s3_server, bucket, tmp_path):
    s3_server.authentication(enforced=True)
    try:
        kind = S3Kind(
            bucket=bucket.name,
            endpoint_url=s3_server.endpoint,
            access_key_id="AKIAUNKNOWNKEY000000",
            secret_access_key="wrong-secret-value-abcdef",
        )
        with kind, pytest.raises(DestinationMisconfigured) as error:
            kind.check(folder="")
    finally:
        s3_server.authentication(enforced=False)
    assert "refused the credentials (InvalidAccessKeyId)" in error.value.message
    assert "wrong-secret-value-abcdef" not in error.value.message
    assert "wrong-secret-value-abcdef" not in repr(kind)


def test_a_server_that_does_not_answer_is_a_temporary_failure(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    kind = S3Kind(bucket="b", endpoint_url=f"http://127.0.0.1:{port}", **S3_KEYS)
    with kind, pytest.raises(DeliveryTemporarilyFailed) as error:
        kind.stat("x.pdf")
    assert "could not be reached" in error.value.message


def test_destinations_made_in_one_process_each_keep_their_own_endpoint(s3_server, bucket, tmp_path):
    # The kinds share one boto3 session per process; each must still talk to its own server.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    reachable = s3_kind(s3_server, bucket.name)
    unreachable = S3Kind(bucket=bucket.name, endpoint_url=f"http://127.0.0.1:{closed_port}", **S3_KEYS)
    with reachable, unreachable:
        with pytest.raises(DeliveryTemporarilyFailed):
            unreachable.upload(local_file(tmp_path, b"%PDF-1.7 lost"), "lost.pdf")
        reachable.upload(local_file(tmp_path, b"%PDF-1.7 kept"), "kept.pdf")
    assert bucket.keys() == ["kept.pdf"]


@pytest.mark.parametrize(
    ("given", "secrets", "system_wide", "message"),
    [
        ({"bucket": "b"}, {}, False, "needs an access key and a secret key"),
        ({"bucket": "b"}, {"access_key_id": "AKIA"}, True, "go together"),
        ({"bucket": ""}, S3_KEYS, False, "bucket name is missing"),
        ({"bucket": "b", "colour": "red"}, S3_KEYS, False, "no setting colour"),
        ({"bucket": "b", "endpoint_url": "http://user:pw@minio:9000"}, S3_KEYS, False, "must not carry"),
        ({"bucket": "b", "endpoint_url": "ftp://minio"}, S3_KEYS, False, "http:// or https://"),
        ({"bucket": "b", "acl": "everyone"}, S3_KEYS, False, "The ACL must be"),
        ({"bucket": "b", "storage_class": "cheap please"}, S3_KEYS, False, "storage class"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(given, secrets, system_wide, message):
    with pytest.raises(InvalidInput) as error:
        S3Kind.clean(given, secrets, system_wide=system_wide)
    assert message in error.value.message


def test_a_system_wide_destination_may_use_the_machines_own_credentials():
    cleaned, secrets = S3Kind.clean({"bucket": "archive"}, {}, system_wide=True)
    assert cleaned["bucket"] == "archive"
    assert cleaned["storage_class"] == "STANDARD"
    assert secrets == {}


# --- Where a user's destination may point (docuelevate.addresses) ----------------------------


def test_a_users_endpoint_on_this_machine_is_refused_unless_its_network_is_allowed(settings):
    settings.URL_FETCH_ALLOWED_NETWORKS = ()
    own = {"bucket": "b", "endpoint_url": "http://127.0.0.1:9000"}
    with pytest.raises(HostRefused, match="private, loopback or reserved address"):
        S3Kind.clean(own, S3_KEYS, system_wide=False)
    assert S3Kind.clean(own, S3_KEYS, system_wide=True)[0]["endpoint_url"] == own["endpoint_url"]
    settings.URL_FETCH_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    assert S3Kind.clean(own, S3_KEYS, system_wide=False)[0]["endpoint_url"] == own["endpoint_url"]


def test_a_saved_endpoint_is_judged_again_for_every_delivery(db, owner, settings, monkeypatch):
    resolve_as(monkeypatch, {"minio.example.test": ["93.184.216.34"]})
    settings.URL_FETCH_ALLOWED_NETWORKS = ()
    destination = destination_create(
        kind="s3", name="Mine", owner=owner, secrets=S3_KEYS,
        settings={"bucket": "b", "endpoint_url": "http://minio.example.test:9000"},
    )  # fmt: skip
    with kind_for(destination):
        pass  # a public address: a client is made
    # The name now points inside (DNS changed): refused, as a wrong setting is.
    resolve_as(monkeypatch, {"minio.example.test": ["10.0.0.7"]})
    with pytest.raises(DestinationMisconfigured, match="private, loopback or reserved address"):
        kind_for(destination)
    # The name does not resolve (a DNS failure may pass): a client is made, and connecting
    # fails as a temporary failure, to be retried.
    resolve_as(monkeypatch, {"minio.example.test": []})
    with kind_for(destination) as kind, pytest.raises(DeliveryTemporarilyFailed):
        kind.stat("x.pdf")
