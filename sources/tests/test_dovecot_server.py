"""The IMAP test server itself: Dovecot logs in the right password over verified TLS only,
keeps what is appended with its UIDs across a restart, drops connections on demand, and
takes every mail of sources/tests/mails.py as it is, 2,000 attachments included."""

from __future__ import annotations

import re
import socket
import ssl
from email import policy
from email.parser import BytesParser

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from sources.tests import mails
from sources.tests.servers.dovecot import DovecotServer

# pytest finds fixtures by their names in the test module.
from sources.tests.servers.fixtures import *  # noqa: F403


def test_an_account_logs_in_over_imaps_verified_against_the_throwaway_ca(
    dovecot_server: DovecotServer,
) -> None:
    user = dovecot_server.add_user("scanner")
    with dovecot_server.session(user) as client:
        assert client.folder_exists("INBOX")
        assert b"IMAP4REV1" in client.capabilities()


def test_an_account_added_while_the_server_runs_logs_in_at_once(dovecot_server: DovecotServer) -> None:
    first = dovecot_server.add_user("scanner")
    dovecot_server.messages(first)  # Dovecot has read the accounts file now

    second = dovecot_server.add_user("accounting")

    assert dovecot_server.messages(second).uids == []


def test_a_client_trusting_only_the_system_cas_refuses_the_server(dovecot_server: DovecotServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            dovecot_server.host, port=dovecot_server.port, ssl=True, ssl_context=ssl.create_default_context()
        )


def test_a_wrong_password_is_refused_and_the_right_one_still_works(dovecot_server: DovecotServer) -> None:
    user = dovecot_server.add_user("scanner")
    client = dovecot_server.connect()
    with pytest.raises(LoginError):
        client.login(user.username, user.password + "-wrong")
    with pytest.raises(LoginError):
        client.login("nobody-here", user.password)
    client.login(user.username, user.password)
    client.logout()


def test_the_plain_port_takes_a_login_only_after_starttls(dovecot_server: DovecotServer) -> None:
    user = dovecot_server.add_user("scanner")
    assert dovecot_server.starttls_port is not None
    client = IMAPClient(
        dovecot_server.starttls_host, port=dovecot_server.starttls_port, ssl=False, timeout=30
    )
    with pytest.raises(LoginError, match=r"PRIVACYREQUIRED"):
        client.login(user.username, user.password)
    client.starttls(dovecot_server.tls.client_context())
    client.login(user.username, user.password)
    client.logout()


def test_appended_mail_is_listed_with_its_uids_flags_and_uidvalidity(dovecot_server: DovecotServer) -> None:
    user = dovecot_server.add_user("scanner")
    first, second = mails.mail_bytes(mails.mail_with_pdf()), mails.mail_bytes(mails.nested_mail())

    uids = [
        dovecot_server.append(user, "INBOX", first),
        dovecot_server.append(user, "INBOX", second, flags=[r"\Seen"]),
    ]
    filed_uid = dovecot_server.append(user, "Scans/Invoices", first)

    inbox = dovecot_server.messages(user)
    assert inbox.uids == uids == [1, 2]
    assert [r"\Seen" in message.flags for message in inbox.messages] == [False, True]
    assert [message.size for message in inbox.messages] == [len(first), len(second)]
    filed = dovecot_server.messages(user, "Scans/Invoices")
    assert filed.uids == [filed_uid]
    assert inbox.uidvalidity > 0
    assert filed.uidvalidity > 0
    with dovecot_server.session(user) as client:
        client.select_folder("INBOX", readonly=True)
        assert client.fetch([2], ["BODY.PEEK[]"])[2][b"BODY[]"] == second


def test_accounts_see_only_their_own_mail(dovecot_server: DovecotServer) -> None:
    scanner, accounting = dovecot_server.add_user("scanner"), dovecot_server.add_user("accounting")
    dovecot_server.append(scanner, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))

    assert len(dovecot_server.messages(scanner).uids) == 1
    assert dovecot_server.messages(accounting).uids == []


def test_a_restart_keeps_the_port_the_mail_and_the_uidvalidity(dovecot_server: DovecotServer) -> None:
    user = dovecot_server.add_user("scanner")
    dovecot_server.append(user, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))
    before, port = dovecot_server.messages(user), dovecot_server.port

    dovecot_server.restart()

    assert dovecot_server.port == port
    assert dovecot_server.messages(user) == before
    assert (
        dovecot_server.append(user, "INBOX", mails.mail_bytes(mails.mail_with_pdf())) == before.uids[-1] + 1
    )


def test_a_stopped_server_refuses_connections_and_its_clients_lose_theirs(
    dovecot_server: DovecotServer,
) -> None:
    user = dovecot_server.add_user("scanner")
    client = dovecot_server.connect(user)
    client.select_folder("INBOX")

    dovecot_server.stop()

    with pytest.raises((IMAPClientError, OSError)):
        client.noop()
    with pytest.raises(ConnectionRefusedError):
        dovecot_server.connect()


def test_dropped_connections_fail_their_next_command_while_the_server_stays_up(
    dovecot_server: DovecotServer,
) -> None:
    user = dovecot_server.add_user("scanner")
    dovecot_server.append(user, "INBOX", mails.mail_bytes(mails.mail_with_pdf()))
    client = dovecot_server.connect(user)
    client.select_folder("INBOX")

    dovecot_server.drop_connections()

    with pytest.raises((IMAPClientAbortError, OSError)):
        client.fetch([1], ["BODY.PEEK[]"])
    assert len(dovecot_server.messages(user).uids) == 1


def test_a_connection_dropped_mid_fetch_ends_before_the_message_does(dovecot_server: DovecotServer) -> None:
    user = dovecot_server.add_user("scanner")
    message = mails.mail_bytes(mails.oversized_attachment_mail(16 * 1024 * 1024))
    uid = dovecot_server.append(user, "INBOX", message)
    context = dovecot_server.tls.client_context()

    # IMAP spoken by hand: IMAPClient reads a literal whole, so with it nothing could stop
    # reading halfway. A small receive buffer, fixed before connecting, keeps what the server
    # can send ahead (its 4 MiB send buffer at most) far below the 22 MB the message takes.
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    raw.connect((dovecot_server.host, dovecot_server.port))
    with context.wrap_socket(raw, server_hostname=dovecot_server.host) as connection:
        # Should the drop fail, the read below ends after this instead of waiting for ever.
        connection.settimeout(30)
        reader = connection.makefile("rb")
        reader.readline()  # the greeting
        for tag, command in ((b"a1", f"LOGIN {user.username} {user.password}"), (b"a2", "SELECT INBOX")):
            connection.sendall(tag + b" " + command.encode() + b"\r\n")
            while not (line := reader.readline()).startswith(tag):
                pass
            assert line.startswith(tag + b" OK"), line
        connection.sendall(f"a3 UID FETCH {uid} BODY.PEEK[]\r\n".encode())
        literal = re.search(rb"\{(\d+)\}\r\n$", reader.readline())
        assert literal is not None
        received = len(reader.read(64 * 1024))

        dovecot_server.drop_connections()

        try:
            while chunk := reader.read(64 * 1024):
                received += len(chunk)
        except OSError:  # a reset, or TLS cut off without its closing message
            pass
    assert int(literal[1]) == len(message)
    assert 64 * 1024 <= received < len(message)
    assert len(dovecot_server.messages(user).uids) == 1


def test_every_kind_of_test_mail_is_stored_byte_for_byte(dovecot_server: DovecotServer) -> None:
    user = dovecot_server.add_user("scanner")
    sent = [
        mails.mail_bytes(message)
        for message in (
            mails.mail_with_pdf(),
            mails.nested_mail(),
            mails.encoded_subject_mail(),
            mails.encoded_subject_mail(charset="iso-8859-1", subject="Rechnung für März"),
            mails.encoded_filename_mail(encoding=mails.NameEncoding.RFC2231),
            mails.encoded_filename_mail(encoding=mails.NameEncoding.RFC2047),
            mails.hostile_names_mail(encoding=mails.NameEncoding.RFC2231),
            mails.hostile_names_mail(encoding=mails.NameEncoding.RFC2047),
            mails.empty_attachment_mail(),
            mails.oversized_attachment_mail(2 * 1024 * 1024),
            mails.forwarded_mail(),
            mails.calendar_invite(),
        )
    ]
    uids = dovecot_server.append_many(user, "INBOX", sent)

    with dovecot_server.session(user) as client:
        client.select_folder("INBOX", readonly=True)
        stored = client.fetch(uids, ["BODY.PEEK[]"])
    assert [stored[uid][b"BODY[]"] for uid in uids] == sent


def test_a_mail_with_2000_attachments_is_appended_and_its_structure_lists_each_one(
    dovecot_server: DovecotServer,
) -> None:
    user = dovecot_server.add_user("scanner")
    message = mails.mail_bytes(mails.many_attachments_mail(2000))

    uid = dovecot_server.append(user, "INBOX", message)

    with dovecot_server.session(user) as client:
        client.select_folder("INBOX", readonly=True)
        structure = client.fetch([uid], ["BODYSTRUCTURE"])[uid][b"BODYSTRUCTURE"]
    parts, subtype = structure[0], structure[1]
    assert subtype == b"mixed"
    assert len(parts) == 2001  # the text, then the scans
    last_disposition = parts[-1][
        8
    ]  # (type, subtype, params, id, description, encoding, size, md5, disposition...)
    assert last_disposition == (b"attachment", (b"filename", b"scan-2000.pdf"))
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    assert len(list(parsed.iter_attachments())) == 2000
