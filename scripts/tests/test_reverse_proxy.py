"""deploy/nginx/docuelevate.conf run by a real nginx, and the Traefik example's files.

nginx runs from a throwaway prefix with a self-signed certificate, on free ports, in front
of a small HTTP server that answers with the headers it received; the system's nginx
service is never needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from django.conf import settings

from conftest import PROJECT_DIR, service_missing, wait_until

CONF = PROJECT_DIR / "deploy/nginx/docuelevate.conf"
HOST = "docs.example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EchoHandler(BaseHTTPRequestHandler):
    """Stands in for gunicorn: answers with the request line and headers nginx sent."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Site:
    folder: Path
    nginx_conf: Path
    cert: Path
    http_port: int
    https_port: int


def site(tmp_path: Path, upstream_port: int = 8000) -> Site:
    """The shipped file with only the certificate, the ports and the upstream replaced."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        service_missing("nginx is not installed (Debian package nginx)")
    if shutil.which("openssl") is None:
        service_missing("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}",
         "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    http_port, https_port = free_port(), free_port()
    text = CONF.read_text()
    text = text.replace(f"/etc/letsencrypt/live/{HOST}/fullchain.pem", str(cert))
    text = text.replace(f"/etc/letsencrypt/live/{HOST}/privkey.pem", str(key))
    text = re.sub(r"listen \[::\]:\d+[^;]*;\n", "", text)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    (tmp_path / "docuelevate.conf").write_text(text)
    # Everything nginx writes stays under tmp_path, so neither root nor /var is needed.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = " ".join(f"{kind}_temp_path {tmp_path}/{kind};" for kind in ("proxy", "fastcgi", "uwsgi", "scgi"))
    nginx_conf = tmp_path / "nginx.conf"
    nginx_conf.write_text(
        f"{user}events {{}}\nhttp {{\n  access_log {tmp_path}/access.log;\n"
        f"  client_body_temp_path {tmp_path}/body; {temp}\n  include {tmp_path}/docuelevate.conf;\n}}\n"
    )
    return Site(tmp_path, nginx_conf, cert, http_port, https_port)


def nginx(site: Site, *args: str) -> list[str]:
    globals_ = f"pid {site.folder}/nginx.pid; error_log stderr;"
    return ["nginx", "-p", str(site.folder), "-c", str(site.nginx_conf), "-g", globals_, *args]


@pytest.fixture
def echo_backend() -> Iterator[int]:
    """The echo server on 127.0.0.1, standing for the application; gives its port."""
    backend = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    # A short poll interval keeps shutdown (and so every test) quick.
    threading.Thread(target=backend.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield backend.server_address[1]
    backend.shutdown()
    backend.server_close()


@pytest.fixture
def nginx_site(tmp_path: Path, echo_backend: int) -> Site:
    """The shipped configuration, in front of the echo server (openssl makes its certificate)."""
    return site(tmp_path, upstream_port=echo_backend)


@pytest.fixture
def running(nginx_site: Site) -> Iterator[Site]:
    """nginx with the shipped configuration in front of the echo server."""
    command = nginx(nginx_site)
    command[-1] += " daemon off;"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def accepts() -> bool:
        if process.poll() is not None:
            pytest.fail(f"nginx exited: {process.communicate()[0].decode()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", nginx_site.https_port), timeout=1).close()
            return True
        return False

    try:
        wait_until(accepts, timeout=20, what="nginx to accept connections", interval=0.1)
        yield nginx_site
    finally:
        process.terminate()
        process.wait(timeout=20)


def directives(text: str) -> list[str]:
    """The configuration's directives, comments removed, one per entry."""
    without_comments = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return [" ".join(part.split()) for part in re.split(r"[;{}]", without_comments) if part.strip()]


def test_nginx_accepts_the_configuration(nginx_site):
    result = subprocess.run(nginx(nginx_site, "-t"), capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_plain_http_is_sent_to_https(running):
    response = requests.get(
        f"http://127.0.0.1:{running.http_port}/files?page=2",
        headers={"Host": HOST},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{HOST}/files?page=2"


def test_the_application_learns_scheme_host_client_and_a_request_id(running):
    response = requests.get(
        f"https://127.0.0.1:{running.https_port}/api/files",
        headers={"Host": HOST, "X-Forwarded-For": "203.0.113.9", "X-Request-ID": "chosen-by-client"},
        verify=str(running.cert),
        timeout=10,
    )

    received = response.json()["headers"]
    assert received["Host"] == HOST
    assert received["X-Forwarded-Host"] == HOST
    assert received["X-Forwarded-Proto"] == "https"
    # The proxy appends the real client; the application trusts only that last entry.
    assert received["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert received["X-Real-IP"] == "127.0.0.1"
    # nginx's own id replaces whatever the client sent.
    assert re.fullmatch(r"[0-9a-f]{32}", received["X-Request-ID"])


def handshake(site: Site, version: ssl.TLSVersion) -> str | None:
    context = ssl.create_default_context(cafile=str(site.cert))
    # Let the client offer old protocols, so a refusal is the server's.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    raw = socket.create_connection(("127.0.0.1", site.https_port), timeout=10)
    with raw, context.wrap_socket(raw, server_hostname=HOST) as tls:
        return tls.version()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_only_tls_1_2_and_1_3_are_offered(running):
    assert handshake(running, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(running, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(running, ssl.TLSVersion.TLSv1_1)
    assert "ssl_protocols TLSv1.2 TLSv1.3" in directives(CONF.read_text())


def test_a_body_over_the_limit_gets_the_applications_json_error_shape(running):
    context = ssl.create_default_context(cafile=str(running.cert))
    raw = socket.create_connection(("127.0.0.1", running.https_port), timeout=10)
    with raw, context.wrap_socket(raw, server_hostname=HOST) as tls:
        # Only the announced length matters: nginx answers before reading the body.
        tls.sendall(
            f"POST /api/ui-upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {2 * 1024**3}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        answer = b""
        while b"}" not in answer:
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk

    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert "Content-Type: application/json" in head
    assert "detail" in json.loads(body)


def test_nginx_lets_through_every_upload_the_application_accepts():
    found = [d for d in directives(CONF.read_text()) if d.startswith("client_max_body_size ")]
    assert found == ["client_max_body_size 1025m"]
    # The application's whole-request limit: one file of MAX_UPLOAD_SIZE plus the form around it.
    assert settings.MAX_UPLOAD_SIZE + settings.MAX_REQUEST_BODY_SIZE <= 1025 * 1024**2


def test_uploads_stream_to_the_application_with_long_timeouts():
    found = directives(CONF.read_text())
    assert "proxy_request_buffering off" in found
    for name in ("client_body_timeout", "proxy_send_timeout", "proxy_read_timeout", "send_timeout"):
        (value,) = [d.split()[1] for d in found if d.startswith(f"{name} ")]
        assert int(value.removesuffix("s")) >= 300, name
    assert "server 127.0.0.1:8000" in found


def test_the_traefik_example_routes_the_host_over_websecure_with_tls():
    static = yaml.safe_load((PROJECT_DIR / "deploy/traefik/traefik.yml").read_text())
    dynamic = yaml.safe_load((PROJECT_DIR / "deploy/traefik/dynamic/docuelevate.yml").read_text())
    shared = yaml.safe_load((PROJECT_DIR / "deploy/traefik/dynamic/tls.yml").read_text())

    assert static["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]["to"] == "websecure"
    assert static["entryPoints"]["websecure"]["address"] == ":443"
    # A 1 GiB upload on a slow line outlasts Traefik v3's default 60 s read timeout.
    assert static["entryPoints"]["websecure"]["transport"]["respondingTimeouts"]["readTimeout"] == 0
    router = dynamic["http"]["routers"]["docuelevate"]
    assert router["entryPoints"] == ["websecure"]
    assert router["rule"] == f"Host(`{HOST}`)"
    assert router["tls"]["certResolver"] in static["certificatesResolvers"]
    assert router["tls"]["options"] in shared["tls"]["options"]
    assert shared["tls"]["options"][router["tls"]["options"]]["minVersion"] == "VersionTLS12"
    for middleware in router["middlewares"]:
        assert middleware in shared["http"]["middlewares"]
    assert dynamic["http"]["services"]["docuelevate"]["loadBalancer"]["servers"] == [
        {"url": "http://127.0.0.1:8000"}
    ]
