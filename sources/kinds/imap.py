"""Mailboxes over IMAP (imapclient): the attachments of new mail become documents.

Only new mail is read. Per folder the cursor keeps UIDVALIDITY and the highest UID taken;
the next poll asks for the UIDs after it. A first poll (or a folder the server renumbered)
takes the unseen mail, or the mail since ``since`` when that is set, never the whole history.
Each mail is fetched with ``BODY.PEEK[]`` (reading it sets no flag), its attachments go to
the ledger as ``<Message-ID>|<SHA-256>`` (the same mail delivered twice, or copied to a
second folder, is taken once), then comes what the account says happens after (mark seen,
move, delete), then the cursor moves past it. A poller killed anywhere in between finds the
attachments in the ledger on the next poll and only finishes the mail.

``IMAP_READONLY_MODE`` opens folders read-only and changes nothing on the server.

A mailbox signs in with its password, or (``auth`` google or microsoft) with SASL XOAUTH2
and an access token its refresh token is exchanged for at each poll (``imap_oauth``).
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Mapping
from datetime import date
from typing import Any, Self

from django.conf import settings as django_settings
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from destinations.kinds.oauth import (
    RENEWED_SECRET_NAMES,
    TOKEN_SECRET_NAMES,
    refresh_token_in_use,
    token_secrets_clean,
    token_secrets_renewed,
)
from destinations.kinds.transport import provider_session
from docuelevate.addresses import public_host_check
from docuelevate.errors import InvalidInput
from sources.kinds.base import (
    EnvironmentSource,
    Kind,
    PollContext,
    SourceMisconfigured,
    SourceTemporarilyFailed,
)
from sources.kinds.imap_oauth import DEFAULT_HOSTS, MICROSOFT_DEFAULT_TENANT, Auth, MailApp
from sources.mail import AttachmentFilter, Mail, mail_read
from sources.models import ItemState, SourceCursor

# A tenant is a GUID, a domain or one of common/organizations/consumers; it goes in a URL path.
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,99}")


class After:
    """What happens to a mail once its attachments are taken."""

    SEEN = "seen"
    MOVE = "move"
    DELETE = "delete"
    NOTHING = "nothing"
    CHOICES = (SEEN, MOVE, DELETE, NOTHING)


CONNECT_TIMEOUT = 30
# A mail larger than this is left alone with the reason (it is read whole into memory).
MAX_MESSAGE_SIZE_FACTOR = 2


class ImapKind(Kind):
    label = "E-mail (IMAP)"
    setting_names = (
        "host",
        "port",
        "ssl",
        "username",
        "folders",
        "since",
        "sender_filter",
        "subject_filter",
        "tags",
        "attachment_filter",
        "after",
        "move_to",
        "include_mail",
        "auth",
        "client_id",
        "tenant_id",
    )
    secret_names = ("password", "client_secret", "refresh_token")
    flag_settings = ("ssl", "include_mail")
    number_settings = ("port",)
    list_settings = ("folders", "tags")
    choice_settings = {
        "auth": (
            (Auth.PASSWORD, "Password"),
            (Auth.GOOGLE, "Google (Gmail, Google Workspace) with OAuth 2.0"),
            (Auth.MICROSOFT, "Microsoft 365 / Outlook with OAuth 2.0"),
        ),
        "attachment_filter": (
            (AttachmentFilter.DOCUMENTS_ONLY, "Documents only"),
            (AttachmentFilter.ALL, "Every attached file and picture"),
        ),
        "after": (
            (After.SEEN, "Mark it read"),
            (After.MOVE, "Move it to the folder below"),
            (After.DELETE, "Delete it"),
            (After.NOTHING, "Leave it as it is"),
        ),
    }
    help_texts = {
        "host": "The mail server's name, as your provider gives it for IMAP, e.g. imap.example.com.",
        "port": "Empty for the usual one: 993 with SSL, 143 without, e.g. 993.",
        "ssl": "Connect with TLS from the start (port 993). Untick for port 143: the connection then "
        "switches to TLS (STARTTLS) when the server offers it.",
        "username": "The account's sign-in name, usually its address, e.g. scans@example.com.",
        "password": "The account's password, or an app password where the provider asks for one "
        "(Gmail, Outlook), e.g. abcd efgh ijkl mnop.",
        "folders": "The folders to read, separated by commas, e.g. INBOX, Scans. Empty: INBOX.",
        "since": "On the first look, take the mail received since this date, e.g. 2026-01-31. "
        "Empty: the unread mail only. Later looks take only new mail.",
        "sender_filter": "Take only mail whose sender contains this, e.g. @scanner.example.com. "
        "Empty: from anyone.",
        "subject_filter": "Take only mail whose subject contains this (any case), e.g. invoice. "
        "Empty: any subject.",
        "tags": "Tags every document from this mailbox gets, separated by commas, e.g. mail, invoices.",
        "attachment_filter": "Documents only: attached files of a type DocuElevate processes (PDF, "
        "images, office files), not the pictures inside a mail's text; every file: all of them, "
        "unsupported ones then fail visibly.",
        "after": "What happens to a mail once its attachments are taken, e.g. mark it read. "
        "IMAP_READONLY_MODE leaves every mail as it is.",
        "move_to": "The folder a taken mail moves to when it is to be moved, e.g. Archive/Scanned.",
        "include_mail": "Also keep the mail itself (.eml) as a document, besides its attachments.",
        "auth": "How the mailbox signs in: its password, or OAuth 2.0 with Google or Microsoft "
        "(docs/ingestion.md says how to register the app and get a refresh token).",
        "client_id": "OAuth only: the app's client id from Google Cloud or Microsoft Entra, "
        "e.g. 0a1b2c3d-….apps.googleusercontent.com.",
        "tenant_id": "Microsoft only: common (any account), organizations, or your directory's id "
        "or domain, e.g. contoso.onmicrosoft.com.",
        "client_secret": "OAuth only: the app's client secret (Google needs one; a Microsoft public "
        "client has none), e.g. GOCSPX-….",
        "refresh_token": "OAuth only: the refresh token the account gave the app, e.g. 1//0g….",
    }
    carried_secret_names = RENEWED_SECRET_NAMES

    def __init__(
        self,
        *,
        settings: Mapping[str, Any],
        password: str = "",
        app: MailApp | None = None,
        refresh_token: str = "",
        token_in_use: str = "",
    ) -> None:
        self.settings = dict(settings)
        self.password = password
        # Signing in with OAuth: the app, the refresh token as given, and the one in use
        # (a newer one the provider issued in its place, while that was the given one).
        self.app = app
        self.given_refresh_token = refresh_token
        self.refresh_token = token_in_use or refresh_token

    def __repr__(self) -> str:
        return f"ImapKind({self.settings['username']}@{self.settings['host']})"

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        # Besides what the form asks for, the secrets a rotated refresh token leaves.
        known_secrets = {*cls.secret_names, *TOKEN_SECRET_NAMES}
        unknown = sorted((set(settings) - set(cls.setting_names)) | (set(secrets) - known_secrets))
        if unknown:
            raise InvalidInput(f"A mailbox has no setting {', '.join(unknown)}.")
        auth = settings.get("auth") or Auth.PASSWORD
        if auth not in Auth.CHOICES:
            raise InvalidInput(f"auth is one of {', '.join(Auth.CHOICES)}.")
        # Gmail and Microsoft 365 have one IMAP server each: naming it is optional.
        host = str(settings.get("host") or DEFAULT_HOSTS.get(auth, "")).strip()
        username = str(settings.get("username") or "").strip()
        if not host or not username:
            raise InvalidInput("A mailbox needs its server (host) and user name.")
        use_ssl = bool(settings.get("ssl", True))
        port = settings.get("port") or (993 if use_ssl else 143)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise InvalidInput("The port is a number from 1 to 65535.")
        if not system_wide:
            public_host_check(host, port=port, what="The mail server")
        folders = settings.get("folders") or ["INBOX"]
        if not isinstance(folders, list) or not all(isinstance(f, str) and f.strip() for f in folders):
            raise InvalidInput("folders is a list of folder names, such as INBOX.")
        since = settings.get("since") or ""
        if since:
            try:
                date.fromisoformat(str(since))
            except ValueError:
                raise InvalidInput("since is a date such as 2026-01-31.") from None
        after = settings.get("after") or After.SEEN
        if after not in After.CHOICES:
            raise InvalidInput(f"after is one of {', '.join(After.CHOICES)}.")
        move_to = str(settings.get("move_to") or "").strip()
        if after == After.MOVE and not move_to:
            raise InvalidInput("Moving mail after it is taken needs the folder to move it to (move_to).")
        attachment_filter = settings.get("attachment_filter") or django_settings.IMAP_ATTACHMENT_FILTER
        if attachment_filter not in AttachmentFilter.CHOICES:
            raise InvalidInput(f"attachment_filter is one of {', '.join(AttachmentFilter.CHOICES)}.")
        for name in ("sender_filter", "subject_filter"):
            pattern = str(settings.get(name) or "")
            if len(pattern) > 500:
                raise InvalidInput(f"{name} is at most 500 characters.")
        tags = settings.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise InvalidInput("tags must be a list of names.")
        sign_in_settings, sign_in_secrets = _sign_in_clean(auth, settings, secrets)
        return (
            {
                "host": host,
                "port": port,
                "ssl": use_ssl,
                "username": username,
                "folders": [folder.strip() for folder in folders],
                "since": str(since),
                "sender_filter": str(settings.get("sender_filter") or "").strip().lower(),
                "subject_filter": str(settings.get("subject_filter") or "").strip().lower(),
                "tags": [tag.strip()[:64] for tag in tags if tag.strip()],
                "attachment_filter": attachment_filter,
                "after": after,
                "move_to": move_to,
                "include_mail": bool(settings.get("include_mail", False)),
                **sign_in_settings,
            },
            sign_in_secrets,
        )

    @classmethod
    def initial_settings(cls) -> dict[str, Any]:
        return {
            "auth": Auth.PASSWORD,
            "ssl": True,
            "folders": ["INBOX"],
            "attachment_filter": django_settings.IMAP_ATTACHMENT_FILTER,
            "after": After.SEEN,
            "include_mail": False,
        }

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> Self:
        if settings["auth"] == Auth.PASSWORD:
            return cls(settings=settings, password=secrets["password"])
        app = MailApp(
            provider=settings["auth"],
            client_id=settings["client_id"],
            client_secret=secrets.get("client_secret", ""),
            tenant_id=settings.get("tenant_id") or MICROSOFT_DEFAULT_TENANT,
        )
        return cls(
            settings=settings,
            app=app,
            refresh_token=secrets["refresh_token"],
            token_in_use=refresh_token_in_use(secrets),
        )

    @classmethod
    def from_environment(cls) -> list[EnvironmentSource]:
        return [
            EnvironmentSource(
                key=f"env:imap:{mailbox['number']}",
                name=f"IMAP{mailbox['number']} {mailbox['username']}@{mailbox['host']}"[:100],
                settings={
                    "host": mailbox["host"],
                    "port": mailbox["port"],
                    "ssl": mailbox["ssl"],
                    "username": mailbox["username"],
                    "after": After.DELETE if mailbox["delete_after_process"] else After.SEEN,
                    "auth": mailbox["auth"],
                    "client_id": mailbox["oauth_client_id"],
                    "tenant_id": mailbox["oauth_tenant_id"],
                },
                secrets={
                    "password": mailbox["password"],
                    "client_secret": mailbox["oauth_client_secret"],
                    "refresh_token": mailbox["oauth_refresh_token"],
                },
                poll_interval_minutes=mailbox["poll_interval_minutes"],
            )
            for mailbox in django_settings.IMAP_MAILBOXES
        ]

    # --- talking to the server ---------------------------------------------------------

    def _connect(self) -> IMAPClient:
        # The token first: a refused refresh token fails the poll before any connection.
        access_token = self._access_token() if self.app is not None else ""
        context = ssl.create_default_context(cafile=django_settings.IMAP_CA_BUNDLE or None)
        host, port = self.settings["host"], self.settings["port"]
        try:
            client = IMAPClient(
                host, port=port, ssl=self.settings["ssl"], ssl_context=context, timeout=CONNECT_TIMEOUT
            )
            if not self.settings["ssl"] and b"STARTTLS" in client.capabilities():
                client.starttls(context)
            if self.app is None:
                client.login(self.settings["username"], self.password)
            else:
                client.oauth2_login(self.settings["username"], access_token)
        except LoginError:
            raise SourceMisconfigured(self._refused_sign_in()) from None
        except ssl.SSLCertVerificationError as exc:
            raise SourceMisconfigured(
                f"The mail server's certificate is not trusted: {exc.verify_message}."
            ) from None
        except (OSError, IMAPClientError, imaplib.IMAP4.error) as exc:
            raise SourceTemporarilyFailed(
                f"The mail server {host}:{port} could not be reached: {exc}"
            ) from None
        return client

    def _access_token(self) -> str:
        """A fresh access token for IMAP; a refresh token the provider issued in place of
        the one used is handed on to be stored before it is relied on."""
        assert self.app is not None
        with provider_session() as session:
            grant = self.app.access_token_fetch(refresh_token=self.refresh_token, session=session)
        if grant.refresh_token is not None:
            self.refresh_token = grant.refresh_token
            if self.on_secrets_renewed is not None:
                self.on_secrets_renewed(
                    token_secrets_renewed({"refresh_token": self.given_refresh_token}, grant.refresh_token)
                )
        return grant.access_token

    def _refused_sign_in(self) -> str:
        username = self.settings["username"]
        if self.app is None:
            return f"The mail server refused the sign-in of {username}: check the password."
        # The provider gave a token, so the app is known: the mailbox or its scope is not.
        return (
            f"The mail server refused the {self.app.provider_name} sign-in of {username}: check that "
            "the user name is the account that signed in, that the app asks for IMAP access and "
            "that IMAP is enabled for the mailbox."
        )

    def check(self) -> None:
        client = self._connect()
        try:
            for folder in self.settings["folders"]:
                if not client.folder_exists(folder):
                    raise SourceMisconfigured(f"The mailbox has no folder {folder!r}.")
        except (OSError, IMAPClientError) as exc:
            raise SourceTemporarilyFailed(f"The mail server stopped answering: {exc}") from None
        finally:
            _logout(client)

    def poll(self, context: PollContext) -> int:
        client = self._connect()
        made = 0
        try:
            for folder in self.settings["folders"]:
                made += self._poll_folder(client, folder, context)
        except (OSError, IMAPClientError, imaplib.IMAP4.abort) as exc:  # timeouts are OSErrors
            raise SourceTemporarilyFailed(f"The connection to the mail server broke off: {exc}") from None
        finally:
            _logout(client)
        return made

    def _poll_folder(self, client: IMAPClient, folder: str, context: PollContext) -> int:
        readonly = django_settings.IMAP_READONLY_MODE
        try:
            selected = client.select_folder(folder, readonly=readonly)
        except IMAPClientError:
            raise SourceMisconfigured(
                f"The mailbox has no folder {folder!r} (or it cannot be opened)."
            ) from None
        validity = int(selected[b"UIDVALIDITY"])
        cursor, _ = SourceCursor.objects.get_or_create(source=context.source, folder=folder)
        first_look = cursor.validity != validity
        if first_look:
            # First look, or the server renumbered the folder: new mail only, never the
            # history. Until the first look is through, the cursor has no validity, so a
            # poller killed half-way makes the next one look the same way again (the
            # position only skips what this look already finished).
            if cursor.validity is not None:
                cursor.validity, cursor.position = None, 0
                cursor.save(update_fields=["validity", "position", "updated_at"])
            since = self.settings["since"]
            found = client.search(["SINCE", date.fromisoformat(since)] if since else ["UNSEEN"])
            # Everything below UIDNEXT existed when the folder was opened: after this look
            # only what comes later is new.
            uidnext = selected.get(b"UIDNEXT")
            seen_up_to = int(uidnext) - 1 if uidnext else max(client.search(["ALL"]) or [0])
        else:
            found = client.search(["UID", f"{cursor.position + 1}:*"])
        uids = sorted(uid for uid in found if uid > cursor.position)
        made = 0
        limit = django_settings.MAX_UPLOAD_SIZE * MAX_MESSAGE_SIZE_FACTOR
        for uid in uids:
            ref = f"imap://{self.settings['username']}@{self.settings['host']}/{folder};UIDVALIDITY={validity};UID={uid}"
            sizes = client.fetch([uid], ["RFC822.SIZE"])
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if not sizes.get(uid):
                pass  # gone meanwhile (another client expunged it)
            elif size > limit:
                context.skip(
                    key=f"{ref}|size", ref=ref, reason=f"The mail is {size} bytes, over the limit of {limit}."
                )
            else:
                raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
                made += self._take_mail(
                    mail_read(raw, attachment_filter=self.settings["attachment_filter"]), raw, ref, context
                )
                if not readonly:
                    self._after(client, uid)
            cursor.position = uid
            cursor.save(update_fields=["position", "updated_at"])
            context.renew()
        if not readonly and self.settings["after"] in (After.MOVE, After.DELETE) and uids:
            client.expunge()
        if first_look:
            cursor.validity, cursor.position = validity, max(cursor.position, seen_up_to)
            cursor.save(update_fields=["validity", "position", "updated_at"])
        return made

    def _take_mail(self, mail: Mail, raw: bytes, ref: str, context: PollContext) -> int:
        if not self._wanted(mail):
            context.skip(
                key=f"{mail.message_id}|filtered", ref=ref, reason="left out by the sender or subject filter"
            )
            return 0
        made = 0
        tags = self.settings["tags"]
        for attachment in mail.attachments:
            taken = context.take(
                key=f"{mail.message_id}|{attachment.sha256}",
                ref=f"{ref};PART={attachment.index}",
                filename=attachment.filename,
                chunks=[attachment.content],
                tags=tags,
            )
            made += taken.new and taken.state == ItemState.INGESTED
        if self.settings["include_mail"]:
            subject = re.sub(r"[^\w\- ]+", "_", mail.subject)[:100].strip() or "mail"
            taken = context.take(
                key=f"{mail.message_id}|mail", ref=ref, filename=f"{subject}.eml", chunks=[raw], tags=tags
            )
            made += taken.new and taken.state == ItemState.INGESTED
        return made

    def _wanted(self, mail: Mail) -> bool:
        sender, subject = self.settings["sender_filter"], self.settings["subject_filter"]
        return (not sender or sender in mail.sender) and (not subject or subject in mail.subject.lower())

    def _after(self, client: IMAPClient, uid: int) -> None:
        after = self.settings["after"]
        if after == After.SEEN:
            client.add_flags([uid], [b"\\Seen"])
        elif after == After.MOVE:
            client.add_flags([uid], [b"\\Seen"])
            if client.has_capability("MOVE"):
                client.move([uid], self.settings["move_to"])
            else:
                client.copy([uid], self.settings["move_to"])
                client.delete_messages([uid])
        elif after == After.DELETE:
            client.delete_messages([uid])


def _sign_in_clean(
    auth: str, settings: Mapping[str, Any], secrets: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The settings and secrets of one way of signing in; those of the others are dropped
    (the environment gives every variable, empty ones too)."""
    if auth == Auth.PASSWORD:
        password = secrets.get("password")
        if not isinstance(password, str) or not password:
            raise InvalidInput("A mailbox needs its password.")
        return {"auth": auth}, {"password": password}
    client_id = str(settings.get("client_id") or "").strip()
    if not client_id or len(client_id) > 200:
        raise InvalidInput("A mailbox signing in with OAuth needs its app's client id (client_id).")
    client_secret = secrets.get("client_secret") or ""
    if not isinstance(client_secret, str) or len(client_secret) > 500:
        raise InvalidInput("The client secret is not a secret.")
    if auth == Auth.GOOGLE and not client_secret:
        raise InvalidInput("A Gmail mailbox needs its app's client secret (client_secret).")
    tokens = token_secrets_clean(secrets)
    if not tokens.get("refresh_token"):
        raise InvalidInput("A mailbox signing in with OAuth needs its refresh token (refresh_token).")
    clean_settings = {"auth": auth, "client_id": client_id}
    if auth == Auth.MICROSOFT:
        tenant = str(settings.get("tenant_id") or MICROSOFT_DEFAULT_TENANT).strip()
        if not TENANT.fullmatch(tenant):
            raise InvalidInput("tenant_id is a directory id, a domain, common or organizations.")
        clean_settings["tenant_id"] = tenant
    return clean_settings, {**tokens, **({"client_secret": client_secret.strip()} if client_secret else {})}


def _logout(client: IMAPClient) -> None:
    with contextlib.suppress(OSError, IMAPClientError, imaplib.IMAP4.error):  # gone either way
        client.logout()
