"""The URL fetcher's own configuration: allowed networks, trusted CAs, timeouts.

What a user sees of it (a document fetched, or failed with the reason) is tested through
``document_fetch_url`` in test_api_process_url.py; here the fetcher is built with the
settings or the constructor arguments each case needs, against a real server on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from documents.integrations.url_fetcher import FetchError, FetchFailure, UrlFetcher
from documents.tests.file_server import TRICKLE_BYTES, FileServer, certificate_for, resolve_as, serve, url_of
from documents.tests.samples import Samples

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@pytest.fixture
def server(samples: Samples) -> Iterator[FileServer]:
    yield from serve(samples)


def body_of(fetcher: UrlFetcher, url: str) -> bytes:
    with fetcher.open(url) as response:
        return b"".join(response.chunks())


def test_a_private_address_is_refused_unless_the_setting_allows_its_network(server, samples, settings):
    url = url_of(server, "/files/blank.pdf")
    settings.URL_FETCH_ALLOWED_NETWORKS = ()

    with pytest.raises(FetchError) as refused:
        UrlFetcher.from_settings().check(url)
    assert refused.value.kind is FetchFailure.ADDRESS_REFUSED

    settings.URL_FETCH_ALLOWED_NETWORKS = (LOOPBACK,)
    assert body_of(UrlFetcher.from_settings(), url) == (samples / "blank.pdf").read_bytes()
    assert [path for path, _host in server.requests] == ["/files/blank.pdf"]


@pytest.fixture
def https_servers(samples: Samples, tmp_path: Path, monkeypatch) -> Iterator[dict[str, tuple[str, Path]]]:
    """Two HTTPS servers on 127.0.0.1, each for a name of its own with a CA of its own:
    ``intranet`` (files.example.test) and ``public`` (public.example.test), each as
    (the URL of a sample document, its CA file)."""
    names = {"intranet": "files.example.test", "public": "public.example.test"}
    resolve_as(monkeypatch, {name: ["127.0.0.1"] for name in names.values()})
    running = []
    servers = {}
    for role, name in names.items():
        cert, key = certificate_for(name, tmp_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        serving = serve(samples, tls=context)
        server = next(serving)
        running.append(serving)
        servers[role] = (url_of(server, "/files/blank.pdf", host=name, scheme="https"), cert)
    yield servers
    for serving in running:
        next(serving, None)  # runs the rest of serve(): shutdown and close


def test_a_ca_bundle_from_the_settings_is_trusted_besides_the_systems(
    https_servers, samples, settings, monkeypatch
):
    (intranet_url, intranet_ca), (public_url, public_ca) = https_servers["intranet"], https_servers["public"]
    # The system's trust store, as OpenSSL finds it, holds only the "public" CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(public_ca))
    monkeypatch.setenv("SSL_CERT_DIR", str(public_ca.parent / "no-such-folder"))
    settings.URL_FETCH_ALLOWED_NETWORKS = (LOOPBACK,)
    blank = (samples / "blank.pdf").read_bytes()

    settings.URL_FETCH_CA_BUNDLE = None
    assert body_of(UrlFetcher.from_settings(), public_url) == blank
    with pytest.raises(FetchError) as untrusted:
        body_of(UrlFetcher.from_settings(), intranet_url)
    assert untrusted.value.kind is FetchFailure.TLS

    settings.URL_FETCH_CA_BUNDLE = str(intranet_ca)
    assert body_of(UrlFetcher.from_settings(), intranet_url) == blank
    assert body_of(UrlFetcher.from_settings(), public_url) == blank


def test_a_server_silent_for_longer_than_the_read_timeout_is_a_timeout(server):
    fetcher = UrlFetcher(allowed_networks=[LOOPBACK], read_timeout=0.3)

    with pytest.raises(FetchError) as slow:
        body_of(fetcher, url_of(server, "/slow"))

    assert slow.value.kind is FetchFailure.TIMEOUT
    assert slow.value.message == "127.0.0.1 did not answer in time."


def test_a_server_that_trickles_bytes_is_cut_off_at_the_total_timeout(server):
    fetcher = UrlFetcher(allowed_networks=[LOOPBACK], read_timeout=5, total_timeout=1)

    with pytest.raises(FetchError) as trickled:
        body_of(fetcher, url_of(server, "/trickle"))

    assert (trickled.value.kind, trickled.value.message) == (
        FetchFailure.TIMEOUT,
        "The download took too long.",
    )
    # Hung up at the deadline, not once the server was done: far from all of the body came.
    assert server.trickled < TRICKLE_BYTES / 2


def test_an_error_answer_carries_its_status_and_the_redirect_limit_is_the_constructors(server):
    fetcher = UrlFetcher(allowed_networks=[LOOPBACK], max_redirects=1)

    with pytest.raises(FetchError) as missing:
        body_of(fetcher, url_of(server, "/nothing-here"))
    assert (missing.value.kind, missing.value.status) == (FetchFailure.HTTP_STATUS, 404)

    assert body_of(fetcher, url_of(server, "/redirect/1"))
    with pytest.raises(FetchError) as redirected:
        body_of(fetcher, url_of(server, "/redirect/2"))
    assert redirected.value.kind is FetchFailure.TOO_MANY_REDIRECTS
