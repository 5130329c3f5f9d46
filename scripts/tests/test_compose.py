"""docker-compose.yml and docker-compose.prod.yml as Docker Compose itself reads them.

No container engine runs here, so the files are checked through `docker-compose config`
(Debian's docker-compose): it validates them, fills in .env and prints the result, which
the tests read as an operator's `docker compose up` would get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import PROJECT_DIR, service_missing

APP_SERVICES = ("api", "worker", "beat")
BACKING_SERVICES = ("postgres", "redis", "meilisearch")
SECRETS = {
    "POSTGRES_PASSWORD": "pg0secret0for0tests",
    "REDIS_PASSWORD": "redis0secret0for0tests",
    "MEILI_MASTER_KEY": "meili0master0key0for0tests",
}


@pytest.fixture
def compose_project(tmp_path: Path) -> Path:
    """A copy of the compose files beside a .env made, as the docs say, from .env.example."""
    if shutil.which("docker-compose") is None:
        service_missing("docker-compose is not installed (Debian package docker-compose)")
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "deploy", tmp_path / "deploy")
    write_env(tmp_path, {**SECRETS, "EXTERNAL_HOSTNAME": "docs.example.com", "ACME_EMAIL": "ops@example.com"})
    return tmp_path


def write_env(project: Path, values: dict[str, str]) -> None:
    """.env.example with the given variables filled in, the way an operator edits it."""
    lines = (PROJECT_DIR / ".env.example").read_text().splitlines()
    (project / ".env").write_text("\n".join([*lines, *(f"{key}={value}" for key, value in values.items())]))


def compose_config(project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    # Only .env may feed compose: a variable in the caller's environment would win over it.
    env = {"PATH": os.environ["PATH"], "HOME": str(project)}
    args = [arg for name in files or ("docker-compose.yml",) for arg in ("-f", name)]
    return subprocess.run(
        ["docker-compose", *args, "config"], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )


def config(project: Path, *files: str) -> dict[str, Any]:
    result = compose_config(project, *files)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = yaml.safe_load(result.stdout)
    return parsed


def ports(service: dict[str, Any]) -> set[str]:
    """Published ports as "[address:]published:target", from either syntax compose prints."""
    found = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            address = f"{port['host_ip']}:" if port.get("host_ip") else ""
            found.add(f"{address}{port['published']}:{port['target']}")
        else:
            found.add(str(port).removesuffix("/tcp"))
    return found


def healthcheck_disabled(service: dict[str, Any]) -> bool:
    # docker-compose 1.x prints `disable: true` as the equivalent `test: [NONE]`.
    check = service.get("healthcheck", {})
    return check.get("disable") is True or check.get("test") == ["NONE"]


@pytest.fixture
def services(compose_project: Path) -> dict[str, dict[str, Any]]:
    return config(compose_project)["services"]


def test_migrations_finish_before_the_api_workers_and_beat_start(services):
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in APP_SERVICES:
        assert services[name]["command"] == [name]
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # Migrations need the database; everything waits for the backing services to be healthy.
    for name in ("migrate", *APP_SERVICES):
        for backing in ("postgres", "redis", "meilisearch"):
            assert services[name]["depends_on"][backing] == {"condition": "service_healthy"}


def test_workers_can_be_scaled_while_beat_stays_a_single_named_container(services):
    assert "container_name" not in services["worker"]
    assert services["beat"]["container_name"] == "docuelevate-beat"
    assert "deploy" not in services["beat"]


def test_a_worker_consumes_every_queue_unless_the_operator_splits_them(compose_project, services):
    assert services["worker"]["environment"]["CELERY_QUEUES"] == "document_processor,default,celery"

    write_env(compose_project, {**SECRETS, "CELERY_QUEUES": "default,celery"})

    assert config(compose_project)["services"]["worker"]["environment"]["CELERY_QUEUES"] == "default,celery"


def test_database_broker_search_and_gotenberg_are_reachable_only_inside_the_project(compose_project):
    full = config(compose_project)
    assert full["networks"]["backend"]["internal"] is True
    for name in BACKING_SERVICES:
        service = full["services"][name]
        assert "ports" not in service, name
        assert list(service["networks"]) == ["backend"], name
    assert full["services"]["gotenberg"]["profiles"] == ["gotenberg"]
    assert "ports" not in full["services"]["gotenberg"]
    # The api is published for a reverse proxy on this host only, never on every address.
    assert ports(full["services"]["api"]) == {"127.0.0.1:8000:8000"}


def test_every_long_running_service_reports_its_health(services):
    for name, service in services.items():
        if name == "migrate":
            # A one-shot job: its exit code is what counts, the image's web probe does not apply.
            assert healthcheck_disabled(service)
            continue
        assert not healthcheck_disabled(service), name
        assert service["healthcheck"]["test"], name

    assert "/api/diagnostic/healthz/live" in " ".join(services["api"]["healthcheck"]["test"])
    assert "urllib" in " ".join(services["api"]["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["meilisearch"]["healthcheck"]["test"])


def test_every_service_writes_capped_json_file_logs(compose_project):
    services = config(compose_project, "docker-compose.yml", "docker-compose.prod.yml")["services"]
    for name, service in services.items():
        assert service["logging"] == {
            "driver": "json-file",
            "options": {"max-size": "50m", "max-file": "5"},
        }, name


def test_the_api_and_the_workers_share_one_document_volume(compose_project):
    full = config(compose_project)
    assert "docuelevate_workdir" in full["volumes"]
    for name in ("api", "worker"):
        assert "docuelevate_workdir:/workdir:rw" in full["services"][name]["volumes"], name
    assert "postgres_data:/var/lib/postgresql/data:rw" in full["services"]["postgres"]["volumes"]
    assert "meili_data:/meili_data:rw" in full["services"]["meilisearch"]["volumes"]


def test_the_application_reaches_the_backing_services_with_their_secrets(services):
    for name in ("migrate", *APP_SERVICES):
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "postgresql://docuelevate:pg0secret0for0tests@postgres:5432/docuelevate"
        assert env["REDIS_URL"] == "redis://:redis0secret0for0tests@redis:6379/0"
        assert env["MEILISEARCH_URL"] == "http://meilisearch:7700"
        assert env["MEILISEARCH_API_KEY"] == "meili0master0key0for0tests"
        assert env["WORKDIR"] == "/workdir"
        assert env["SECURE_PROXY"] == "true"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg0secret0for0tests"
    assert "redis0secret0for0tests" in services["redis"]["command"]
    assert services["meilisearch"]["environment"]["MEILI_MASTER_KEY"] == "meili0master0key0for0tests"


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_to_start_without_each_secret(compose_project, secret):
    write_env(compose_project, {key: value for key, value in SECRETS.items() if key != secret})

    result = compose_config(compose_project)

    assert result.returncode != 0
    assert f"set {secret} in .env" in result.stderr


def test_one_service_builds_the_image_every_application_service_runs(compose_project, services):
    assert [name for name, service in services.items() if "build" in service] == ["migrate"]
    for name in ("migrate", *APP_SERVICES):
        assert services[name]["image"] == "ghcr.io/docuelevate/docuelevate:latest"

    write_env(compose_project, {**SECRETS, "DOCUELEVATE_IMAGE": "registry.example.com/docuelevate:1.2.3"})

    assert config(compose_project)["services"]["api"]["image"] == "registry.example.com/docuelevate:1.2.3"


def test_the_production_override_serves_the_api_over_tls_through_traefik(compose_project):
    full = config(compose_project, "docker-compose.yml", "docker-compose.prod.yml")
    labels = full["services"]["api"]["labels"]
    if isinstance(labels, list):
        labels = dict(label.split("=", 1) for label in labels)

    assert labels["traefik.enable"] == "true"
    assert labels["traefik.http.routers.docuelevate.rule"] == "Host(`docs.example.com`)"
    assert labels["traefik.http.routers.docuelevate.entrypoints"] == "websecure"
    assert labels["traefik.http.routers.docuelevate.tls.certresolver"] == "letsencrypt"
    assert labels["traefik.http.services.docuelevate.loadbalancer.server.port"] == "8000"
    # Traefik and the api meet on the network the labels name.
    assert labels["traefik.docker.network"] == full["networks"]["proxy"]["name"]
    assert "proxy" in full["services"]["api"]["networks"]
    assert "proxy" in full["services"]["traefik"]["networks"]

    traefik = full["services"]["traefik"]
    flags = traefik["command"]
    assert "--entrypoints.websecure.address=:443" in flags
    assert "--entrypoints.web.http.redirections.entrypoint.to=websecure" in flags
    assert "--certificatesresolvers.letsencrypt.acme.email=ops@example.com" in flags
    assert ports(traefik) == {"80:80", "443:443"}
    # What the labels use from the file provider is defined in the file Traefik is given.
    dynamic = yaml.safe_load((PROJECT_DIR / "deploy/traefik/dynamic/tls.yml").read_text())
    assert labels["traefik.http.routers.docuelevate.tls.options"] == "docuelevate@file"
    assert "docuelevate" in dynamic["tls"]["options"]
    for middleware in labels["traefik.http.routers.docuelevate.middlewares"].split(","):
        assert middleware.removesuffix("@file") in dynamic["http"]["middlewares"]
    # The override publishes nothing of the backend.
    for name in BACKING_SERVICES:
        assert "ports" not in full["services"][name], name


@pytest.mark.parametrize("variable", ["EXTERNAL_HOSTNAME", "ACME_EMAIL"])
def test_the_production_override_needs_a_host_name_and_a_certificate_contact(compose_project, variable):
    values = {**SECRETS, "EXTERNAL_HOSTNAME": "docs.example.com", "ACME_EMAIL": "ops@example.com"}
    write_env(compose_project, {key: value for key, value in values.items() if key != variable})

    result = compose_config(compose_project, "docker-compose.yml", "docker-compose.prod.yml")

    assert result.returncode != 0
    assert variable in result.stderr


def test_env_example_names_every_variable_the_compose_files_read():
    example = (PROJECT_DIR / ".env.example").read_text()
    for variable in [*SECRETS, "DOCUELEVATE_IMAGE", "DOCUELEVATE_PORT", "CELERY_QUEUES", "ACME_EMAIL"]:
        assert f"{variable}=" in example, variable


def test_gotenberg_shares_a_network_without_a_route_out_with_the_workers_alone(compose_project):
    full = config(compose_project)
    assert full["networks"]["conversion"]["internal"] is True
    assert list(full["services"]["gotenberg"]["networks"]) == ["conversion"]
    services = full["services"]
    on_conversion = {name for name, svc in services.items() if "conversion" in svc.get("networks", ())}
    assert on_conversion == {"gotenberg", "worker"}


def test_the_worker_may_make_a_user_namespace_but_keeps_no_capabilities(services):
    worker = services["worker"]
    assert "seccomp=unconfined" in worker["security_opt"]
    assert "no-new-privileges:true" in worker["security_opt"]
    assert worker["cap_drop"] == ["ALL"]
    assert "cap_add" not in worker
    assert all("security_opt" not in services[name] for name in ("api", "beat", "migrate"))
