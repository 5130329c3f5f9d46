"""Amazon S3 and S3-compatible servers (MinIO, Ceph, Wasabi, R2, Garage, …), with boto3.

A put is atomic on S3: an object appears whole under its key or not at all, and a
multipart upload (files past ``MULTIPART_THRESHOLD``) appears only when it is completed.
So no temporary name is needed; an upload cut short leaves at most unfinished parts,
which the bucket's lifecycle rule for incomplete multipart uploads should clean up.
Files stream from disk part by part, a few parts in flight at a time, so a large file
costs a bounded amount of memory.

The content's SHA-256 is stored as the object's user metadata (``x-amz-meta-sha256``):
the check before writing reads it with one HEAD request, where an ETag would not do
(a multipart upload's ETag is no hash of the content).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Self
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings as django_settings
from s3transfer.manager import TransferManager

from destinations.kinds.base import (
    DeliveryFailed,
    DeliveryTemporarilyFailed,
    DestinationMisconfigured,
    EnvironmentDestination,
    Kind,
    ListedEntry,
    LocalFile,
    RemoteFile,
    Uploaded,
)
from destinations.kinds.fields import unknown_refuse
from destinations.models import DestinationKind
from docuelevate.addresses import public_host_check
from docuelevate.errors import InvalidInput

MULTIPART_THRESHOLD = 16 * 1024**2
MULTIPART_CHUNK_SIZE = 16 * 1024**2
# Parts uploaded at once; each reads its part from disk when it is sent.
MAX_CONCURRENCY = 4
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
_STORAGE_CLASS = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

# Error codes, and what they mean for the delivery. Decided on the code S3 sends, never on
# its message.
_REFUSED_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "InvalidClientTokenId",
        "AuthorizationHeaderMalformed",
    }
)
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "403", "Forbidden"})
_MISCONFIGURED = frozenset(
    {
        "NoSuchBucket",
        "InvalidBucketName",
        "PermanentRedirect",
        "IllegalLocationConstraintException",
        "InvalidStorageClass",
        "AccessControlListNotSupported",
        "InvalidArgument",
        "RequestTimeTooSkewed",
        "MethodNotAllowed",
        "NotImplemented",
    }
)
_TEMPORARY = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalError",
        "TooManyRequests",
    }
)
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})

# One boto3 Session per process, made on first use: a session loads S3's service model once
# and every client made from it reuses it, where a Session per destination object cost
# ~100-300 ms a delivery. Clients stay per destination: they carry its keys and endpoint.
# boto3 sessions are not thread-safe (clients are), so a lock guards making clients too.
# A session opens no socket (its clients do, on their first request), so a forked worker
# may keep its parent's; only the lock is replaced, as a fork may copy it held.
_shared_session: boto3.session.Session | None = None
_shared_session_lock = threading.Lock()


def _renew_session_lock_after_fork() -> None:
    global _shared_session_lock
    _shared_session_lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_session_lock_after_fork)


def s3_client(**options: Any) -> Any:
    """A boto3 S3 client made from the process's one Session (``options`` as for
    ``Session.client``)."""
    global _shared_session
    with _shared_session_lock:
        if _shared_session is None:
            _shared_session = boto3.session.Session()
        return _shared_session.client("s3", **options)


class S3Kind(Kind):
    """Delivers to one bucket, below the destination's folder."""

    name = DestinationKind.S3
    setting_names = ("bucket", "folder", "region", "endpoint_url", "storage_class", "acl")
    secret_names = ("access_key_id", "secret_access_key")
    help_texts = {
        "bucket": "The bucket's name, e.g. my-archive.",
        "folder": "Key prefix inside the bucket, e.g. scans/office. Empty: the bucket's top.",
        "region": "The bucket's region, e.g. eu-central-1.",
        "endpoint_url": "Only for an S3-compatible server (MinIO, Ceph, Wasabi, R2, …): its address, "
        "e.g. https://s3.example.com. Empty: Amazon S3.",
        "storage_class": "e.g. STANDARD_IA or GLACIER_IR, or a compatible server's own. Empty: STANDARD.",
        "acl": "A canned ACL, e.g. bucket-owner-full-control. Empty sends none "
        "(buckets made since 2023 refuse ACLs).",
        "access_key_id": "The access key's id, e.g. AKIAIOSFODNN7EXAMPLE; it needs to write in the bucket.",
        "secret_access_key": "The secret key that goes with the access key, "
        "e.g. wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
    }

    def __init__(
        self,
        *,
        bucket: str,
        region: str = "",
        endpoint_url: str = "",
        storage_class: str = "STANDARD",
        acl: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        transfer_config: TransferConfig | None = None,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.storage_class = storage_class
        self.acl = acl
        self.transfer_config = transfer_config or TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK_SIZE,
            max_concurrency=MAX_CONCURRENCY,
        )
        config = Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            # Compatible servers are reached by path (http://host/bucket/key): their buckets
            # rarely have DNS names of their own.
            s3={"addressing_style": "path"} if endpoint_url else {},
            # Checksums only where S3 requires them: many compatible servers refuse the
            # CRC32 trailers newer botocore sends by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # Without keys (a system-wide destination only), boto3's own chain: an instance role.
        self._client = s3_client(
            region_name=region or None,
            endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )

    def __repr__(self) -> str:
        return f"<S3Kind bucket={self.bucket!r} endpoint={self.endpoint_url or 'AWS'!r}>"

    # --- Configuration --------------------------------------------------------------------

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        unknown_refuse(settings, cls.setting_names, what="S3")
        unknown_refuse(secrets, cls.secret_names, what="S3")
        text = {name: str(settings.get(name) or "").strip() for name in cls.setting_names}
        bucket = text["bucket"]
        if not bucket or len(bucket) > 255 or re.search(r"[\s/]", bucket):
            raise InvalidInput("The bucket name is missing or not a bucket name.")
        if text["region"] and not _REGION.fullmatch(text["region"]):
            raise InvalidInput("The region is not a region name such as eu-central-1.")
        if text["endpoint_url"]:
            # A user's own destination must not make the server reach its own network.
            _check_endpoint(text["endpoint_url"], public_only=not system_wide)
        text["storage_class"] = text["storage_class"] or "STANDARD"
        if not _STORAGE_CLASS.fullmatch(text["storage_class"]):
            raise InvalidInput("The storage class is not one such as STANDARD or STANDARD_IA.")
        if text["acl"] and text["acl"] not in CANNED_ACLS:
            raise InvalidInput(f"The ACL must be empty or one of {', '.join(CANNED_ACLS)}.")
        keys = {name: str(secrets.get(name) or "").strip() for name in cls.secret_names}
        if bool(keys["access_key_id"]) != bool(keys["secret_access_key"]):
            raise InvalidInput("The access key and the secret key go together; give both.")
        if not keys["access_key_id"]:
            if not system_wide:
                # A user's destination must never write with the server's own role.
                raise InvalidInput("An S3 destination needs an access key and a secret key.")
            keys = {}
        return text, keys

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        return cls(
            bucket=settings["bucket"],
            region=settings.get("region", ""),
            endpoint_url=settings.get("endpoint_url", ""),
            storage_class=settings.get("storage_class", "STANDARD"),
            acl=settings.get("acl", ""),
            access_key_id=secrets.get("access_key_id", ""),
            secret_access_key=secrets.get("secret_access_key", ""),
        )

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        return cls.environment_account() if django_settings.S3_ENABLED else None

    @classmethod
    def environment_account(cls) -> EnvironmentDestination:
        """What the ``S3_*`` variables describe, whether or not deliveries there are on:
        the remote-folder source (``S3_INGEST_*``) signs in with the same account."""
        keys = {}
        if django_settings.AWS_ACCESS_KEY_ID:
            keys = {
                "access_key_id": django_settings.AWS_ACCESS_KEY_ID,
                "secret_access_key": django_settings.AWS_SECRET_ACCESS_KEY,
            }
        return EnvironmentDestination(
            name="S3 (environment)",
            settings={
                "bucket": django_settings.S3_BUCKET_NAME,
                "folder": django_settings.S3_FOLDER_PREFIX,
                "region": django_settings.AWS_REGION or "",
                "endpoint_url": django_settings.S3_ENDPOINT_URL or "",
                "storage_class": django_settings.S3_STORAGE_CLASS,
                "acl": django_settings.S3_ACL,
            },
            secrets=keys,
        )

    # --- The remote side ------------------------------------------------------------------

    def stat(self, path: str) -> RemoteFile | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=path)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise self._translated(exc, doing=f"look at {path}") from None
        except BotoCoreError as exc:
            raise self._translated(exc, doing=f"look at {path}") from None
        version = head.get("VersionId") or str(head.get("ETag", "")).strip('"')
        sha256 = (head.get("Metadata") or {}).get("sha256")
        return RemoteFile(
            path=path,
            size=int(head["ContentLength"]),
            sha256=sha256,
            remote_id=f"s3://{self.bucket}/{path}",
            version=version,
        )

    def upload(self, local: LocalFile, path: str) -> Uploaded:
        extra: dict[str, Any] = {
            "Metadata": {"sha256": local.sha256},
            "ContentType": local.content_type,
            "StorageClass": self.storage_class,
        }
        if self.acl:
            extra["ACL"] = self.acl
        try:
            # s3transfer directly, not client.upload_file: that one turns every ClientError
            # into an S3UploadFailedError whose code is only in its message.
            with TransferManager(self._client, self.transfer_config) as manager:
                manager.upload(str(local.path), self.bucket, path, extra_args=extra).result()
        except (ClientError, BotoCoreError) as exc:
            raise self._translated(exc, doing=f"write {path}") from None
        landed = self.stat(path)
        if landed is None or landed.size != local.size or landed.sha256 not in (None, local.sha256):
            raise DeliveryTemporarilyFailed(
                f"{path} was not found whole in bucket {self.bucket} after the upload."
            )
        return Uploaded(path=path, remote_id=f"s3://{self.bucket}/{path}", remote_version=landed.version)

    def remove(self, path: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=path)
        except (ClientError, BotoCoreError) as exc:
            raise self._translated(exc, doing=f"remove {path}") from None

    def check(self, *, folder: str) -> None:
        probe = "/".join(part for part in (folder, f".docuelevate-check-{uuid.uuid4().hex}") if part)
        extra: dict[str, Any] = {"StorageClass": self.storage_class}
        if self.acl:
            extra["ACL"] = self.acl
        try:
            # A put, not a HEAD: its refusals say why. The same options as a delivery, so a
            # storage class or ACL the bucket refuses shows here too.
            self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"", **extra)
        except (ClientError, BotoCoreError) as exc:
            raise self._translated(exc, doing="write a test file") from None
        try:
            self._client.delete_object(Bucket=self.bucket, Key=probe)
        except (ClientError, BotoCoreError):
            raise DestinationMisconfigured(
                f"A test file could be written but not removed again: delete {probe} from bucket "
                f"{self.bucket} by hand, and allow s3:DeleteObject."
            ) from None

    # --- Reading a folder (for sources.kinds.remote) -------------------------------------

    def list_folder(self, folder: str) -> list[ListedEntry]:
        """The objects directly below the prefix ``folder`` and the "folders" (common
        prefixes) one level down, page by page."""
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries: list[ListedEntry] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    entries.append(
                        ListedEntry(path=common["Prefix"].rstrip("/"), is_folder=True, size=-1, modified=None)
                    )
                for item in page.get("Contents", []):
                    if item["Key"] == prefix:
                        continue  # the "folder" marker some tools write
                    entries.append(
                        ListedEntry(
                            path=item["Key"],
                            is_folder=False,
                            size=int(item["Size"]),
                            modified=item["LastModified"].timestamp(),
                            version=str(item.get("ETag", "")).strip('"'),
                        )
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._translated(exc, doing=f"list {prefix or 'the bucket'}") from None
        return entries

    def read_chunks(self, path: str) -> Iterator[bytes]:
        """The object at ``path``, streamed a block at a time."""
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=path)["Body"]
            try:
                yield from body.iter_chunks(MULTIPART_CHUNK_SIZE // 16)
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise self._translated(exc, doing=f"read {path}") from None

    def rename(self, source: str, target: str) -> None:
        """S3 has no rename: a server-side copy (in parts when large), then the delete."""
        try:
            self._client.copy({"Bucket": self.bucket, "Key": source}, self.bucket, target)
            self._client.delete_object(Bucket=self.bucket, Key=source)
        except (ClientError, BotoCoreError) as exc:
            raise self._translated(exc, doing=f"move {source} to {target}") from None

    def make_folder(self, folder: str) -> None:
        """Nothing to do: a key's prefix is its folder."""

    def close(self) -> None:
        self._client.close()

    def _translated(self, exc: Exception, *, doing: str) -> DeliveryFailed:
        """The delivery error for a boto3 error, decided on its class and S3's error code."""
        where = self.endpoint_url or "AWS"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return DestinationMisconfigured(
                "No S3 credentials were found; give an access key and a secret key."
            )
        if isinstance(exc, ParamValidationError):
            return DestinationMisconfigured(f"S3 could not be asked to {doing}: a setting is not valid.")
        if isinstance(exc, BotoConnectionError):
            return DeliveryTemporarilyFailed(
                f"S3 at {where} could not be reached ({exc.__class__.__name__})."
            )
        if not isinstance(exc, ClientError):
            return DeliveryTemporarilyFailed(f"S3 at {where} failed to {doing} ({exc.__class__.__name__}).")
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _REFUSED_CREDENTIALS:
            return DestinationMisconfigured(
                f"S3 refused the credentials ({code}); check the access key and the secret key."
            )
        if code in _DENIED:
            # A HEAD request's refusal carries no code: wrong keys and missing rights look alike.
            return DestinationMisconfigured(
                f"S3 refused to {doing} in bucket {self.bucket} ({code}): the access key or secret key is "
                "wrong, or lacks s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket there."
            )
        if code in {"NoSuchBucket", "404"}:
            return DestinationMisconfigured(f"The bucket {self.bucket} does not exist at {where}.")
        if code in _MISCONFIGURED:
            return DestinationMisconfigured(
                f"S3 refused to {doing} ({code}); check the destination's settings."
            )
        if code in _TEMPORARY or status >= 500 or status == 429:
            return DeliveryTemporarilyFailed(f"S3 at {where} could not {doing} for now ({code}).")
        return DeliveryFailed(f"S3 refused to {doing} ({code}).")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _check_endpoint(url: str, *, public_only: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput("The endpoint URL must be an http:// or https:// address.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput("The endpoint URL must not carry a user name, password or query.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("The endpoint URL has an invalid port.") from None
    if public_only:
        public_host_check(parts.hostname, port=port, what="The endpoint URL")
