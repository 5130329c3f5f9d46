"""The destination kinds: one module per protocol behind ``destinations.kinds.base.Kind``.

A new kind is a module here, a line in ``KINDS`` and a ``DestinationKind`` choice; nothing
else learns its name. Modules are imported on first use, so a process that never delivers
never loads a protocol's client library.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.utils.module_loading import import_string

from destinations.kinds.base import DestinationMisconfigured, Kind
from destinations.models import Destination, DestinationKind
from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import InvalidInput

KINDS: dict[str, str] = {
    DestinationKind.S3: "destinations.kinds.s3.S3Kind",
    DestinationKind.PAPERLESS: "destinations.kinds.paperless.PaperlessKind",
    DestinationKind.DROPBOX: "destinations.kinds.dropbox.DropboxKind",
    DestinationKind.GOOGLE_DRIVE: "destinations.kinds.google_drive.GoogleDriveKind",
    DestinationKind.ONEDRIVE: "destinations.kinds.onedrive.OneDriveKind",
    DestinationKind.FTP: "destinations.kinds.ftp.FtpKind",
    DestinationKind.SFTP: "destinations.kinds.sftp.SftpKind",
    DestinationKind.WEBDAV: "destinations.kinds.webdav.WebDavKind",
    DestinationKind.NEXTCLOUD: "destinations.kinds.nextcloud.NextcloudKind",
    DestinationKind.EMAIL: "destinations.kinds.email.EmailKind",
}


def kind_class(kind: str) -> type[Kind]:
    """The class of ``kind``; InvalidInput for a kind this release does not know."""
    try:
        path = KINDS[kind]
    except KeyError:
        raise InvalidInput(f"There is no destination kind {kind!r}; kinds are {', '.join(KINDS)}.") from None
    cls: type[Kind] = import_string(path)
    return cls


def kind_for(destination: Destination) -> Kind:
    """A client for ``destination``; DestinationMisconfigured when its settings do not hold
    (saved before a rule existed, edited around the services, a host that now resolves to
    a private address) or its secrets cannot be decrypted."""
    try:
        cls = kind_class(destination.kind)
        settings, secrets = cls.clean(
            destination.settings, destination.secrets, system_wide=destination.owner_id is None
        )
    except InvalidInput as exc:
        raise DestinationMisconfigured(exc.message) from None
    except SecretsUnreadable as exc:
        raise DestinationMisconfigured(str(exc)) from None
    kind = cls.from_settings(settings, secrets)
    kind.on_secrets_renewed = functools.partial(_secrets_renewed, destination.pk)
    return kind


def _secrets_renewed(destination_id: int, secrets: Mapping[str, Any]) -> None:
    # Imported here: the services build on this module.
    from destinations.services import destination_secrets_renew

    destination_secrets_renew(destination_id=destination_id, secrets=secrets)
