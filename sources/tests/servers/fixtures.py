"""pytest fixtures for the IMAP server: Dovecot on 127.0.0.1 on free ports for one test,
stopped after it. A test needing another setup uses ``DovecotServer`` in a ``with`` block."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import service_missing
from destinations.tests.servers.fixtures import tls_files
from destinations.tests.servers.tls import TlsFiles

from .dovecot import DovecotServer, dovecot_missing
from .introspection import IntrospectionEndpoint, running_introspection_endpoint

# What ``from sources.tests.servers.fixtures import *`` brings into a test module or a
# conftest, where pytest finds fixtures by name; the throwaway CA is the destinations' one.
__all__ = ["dovecot_server", "oauth_dovecot_server", "tls_files", "token_introspection"]


@pytest.fixture
def dovecot_server(tls_files: TlsFiles) -> Iterator[DovecotServer]:
    """IMAPS on ``port`` and plain IMAP with STARTTLS required on ``starttls_port``, no
    account yet (``add_user``)."""
    if reason := dovecot_missing():
        service_missing(reason)
    with DovecotServer(tls=tls_files, starttls=True) as server:
        yield server


@pytest.fixture
def token_introspection() -> Iterator[IntrospectionEndpoint]:
    """Where the OAuth Dovecot checks access tokens; a test ``grant``s the good ones."""
    with running_introspection_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def oauth_dovecot_server(
    tls_files: TlsFiles, token_introspection: IntrospectionEndpoint
) -> Iterator[DovecotServer]:
    """IMAPS that also takes XOAUTH2, its tokens checked at ``token_introspection``."""
    if reason := dovecot_missing():
        service_missing(reason)
    with DovecotServer(tls=tls_files, oauth2_introspection_url=token_introspection.url) as server:
        yield server
