"""The source kinds: one module per protocol behind ``sources.kinds.base.Kind``.

A new kind is a module here, a line in ``KINDS`` and a ``SourceKind`` choice. Modules are
imported on first use, so a process that never polls never loads a protocol's library.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.utils.module_loading import import_string

from docuelevate.encryption import SecretsUnreadable
from docuelevate.errors import InvalidInput
from sources.kinds.base import Kind, SourceMisconfigured
from sources.models import Source, SourceKind

KINDS: dict[str, str] = {
    SourceKind.IMAP: "sources.kinds.imap.ImapKind",
    SourceKind.WATCH: "sources.kinds.watch.WatchKind",
    SourceKind.FTP: "sources.kinds.remote.FtpFolderKind",
    SourceKind.SFTP: "sources.kinds.remote.SftpFolderKind",
    SourceKind.S3: "sources.kinds.remote.S3FolderKind",
    SourceKind.WEBDAV: "sources.kinds.remote.WebDavFolderKind",
    SourceKind.NEXTCLOUD: "sources.kinds.remote.NextcloudFolderKind",
    SourceKind.DROPBOX: "sources.kinds.remote.DropboxFolderKind",
    SourceKind.ONEDRIVE: "sources.kinds.remote.OneDriveFolderKind",
    SourceKind.GOOGLE_DRIVE: "sources.kinds.remote.GoogleDriveFolderKind",
}


def kind_class(kind: str) -> type[Kind]:
    """The class of ``kind``; InvalidInput for a kind this release does not know."""
    try:
        path = KINDS[kind]
    except KeyError:
        raise InvalidInput(f"There is no source kind {kind!r}; kinds are {', '.join(KINDS)}.") from None
    cls: type[Kind] = import_string(path)
    return cls


def kind_for(source: Source) -> Kind:
    """A reader for ``source``, which stores the secrets its provider replaces; SourceMisconfigured
    when its settings no longer hold or its secrets cannot be decrypted."""
    try:
        cls = kind_class(source.kind)
        settings, secrets = cls.clean(source.settings, source.secrets, system_wide=source.owner_id is None)
    except InvalidInput as exc:
        raise SourceMisconfigured(exc.message) from None
    except SecretsUnreadable as exc:
        raise SourceMisconfigured(str(exc)) from None
    kind = cls.from_settings(settings, secrets)
    kind.on_secrets_renewed = functools.partial(_secrets_renewed, source.pk)
    return kind


def _secrets_renewed(source_id: int, secrets: Mapping[str, Any]) -> None:
    # Imported here: the services build on this module.
    from sources.services import source_secrets_renew

    source_secrets_renew(source_id=source_id, secrets=secrets)
