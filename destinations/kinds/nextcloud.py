"""Nextcloud: WebDAV where Nextcloud keeps a user's files, ``/remote.php/dav/files/<user>/``.

``NEXTCLOUD_UPLOAD_URL`` (and a user's ``url``) may be the server's address
(``https://cloud.example.com``) or the full WebDAV address of the user's files (anything
with ``/remote.php/`` in it, e.g. ``…/remote.php/dav/files/<user>`` or the older
``…/remote.php/webdav``), which is used as it is: where the login name is not the user id
(LDAP, e-mail logins) only the full address is right.

Nextcloud keeps the checksum a client sends with a file (``OC-Checksum: SHA256:…``) and
tells it back in PROPFIND (``oc:checksums``), so the look before writing compares hashes
even where the dead property of plain WebDAV is missing.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from django.conf import settings as django_settings

from destinations.kinds.base import EnvironmentDestination, LocalFile
from destinations.kinds.webdav import HASH_PROPERTY, WebDavKind, sha256_or_none
from destinations.kinds.webdav_client import OWNCLOUD, Property, Resource
from destinations.models import DestinationKind
from docuelevate.errors import InvalidInput

FILES_PATH = "/remote.php/dav/files/{user}/"
CHECKSUMS_PROPERTY = Property(OWNCLOUD, "checksums")


class NextcloudKind(WebDavKind):
    """Delivers into one Nextcloud user's files."""

    name = DestinationKind.NEXTCLOUD
    label = "Nextcloud"
    help_texts = {
        **WebDavKind.help_texts,
        "url": "The server, e.g. https://cloud.example.com (the user's files' address is added), or the "
        "full address of the user's files, e.g. https://cloud.example.com/remote.php/dav/files/ada.",
        "folder": "Folder inside the user's files, e.g. Documents/Scans; made when missing.",
        "username": "The Nextcloud login name, e.g. ada.",
        "password": "An app password (Settings → Security → Devices & sessions) "
        "rather than the account's own, e.g. Ab1Cd-2EfGh-3IjKl-4MnOp-5QrSt.",
    }
    stat_properties: ClassVar[tuple[Property, ...]] = (HASH_PROPERTY, CHECKSUMS_PROPERTY)

    @classmethod
    def share_url(cls, url: str, username: str) -> str:
        if "/remote.php/" in url:
            return url if url.endswith("/") else f"{url}/"
        return url.rstrip("/") + FILES_PATH.format(user=quote(username, safe=""))

    @classmethod
    def _check_credentials(cls, *, username: str, password: str) -> None:
        if not username or not password:
            raise InvalidInput("A Nextcloud destination needs a user name and a password (or app password).")

    @classmethod
    def from_environment(cls) -> EnvironmentDestination | None:
        return cls.environment_account() if django_settings.NEXTCLOUD_ENABLED else None

    @classmethod
    def environment_account(cls) -> EnvironmentDestination:
        """What the ``NEXTCLOUD_*`` variables describe, whether or not deliveries there are on:
        the remote-folder source (``NEXTCLOUD_INGEST_*``) signs in with the same account."""
        return EnvironmentDestination(
            name="Nextcloud (environment)",
            settings={
                "url": django_settings.NEXTCLOUD_UPLOAD_URL,
                "folder": django_settings.NEXTCLOUD_FOLDER,
                "username": django_settings.NEXTCLOUD_USERNAME,
                "verify_ssl": True,
            },
            secrets={"password": django_settings.NEXTCLOUD_PASSWORD},
        )

    def _upload_headers(self, local: LocalFile) -> dict[str, str]:
        return {**super()._upload_headers(local), "OC-Checksum": f"SHA256:{local.sha256}"}

    def _sha256_of(self, resource: Resource) -> str | None:
        own = super()._sha256_of(resource)
        if own is not None:
            return own
        # "SHA1:… MD5:… ADLER32:…", with SHA256 among them when a client sent it.
        for checksum in resource.properties.get(CHECKSUMS_PROPERTY.tag, "").split():
            algorithm, _, value = checksum.partition(":")
            if algorithm.upper() == "SHA256":
                return sha256_or_none(value)
        return None
