"""The container image, checked without a container engine: the Dockerfile passes hadolint
and says what operators rely on (non-root, /workdir, the live probe), and the entrypoint
starts each role with the settings from the environment, as the image will run it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from conftest import PROJECT_DIR, log_tail, stop_process_group, wait_until

DOCKERFILE = PROJECT_DIR / "Dockerfile"
ENTRYPOINT = PROJECT_DIR / "docker" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
LIVE_PROBE = "/api/diagnostic/healthz/live"


def instructions(stage: str | None = None) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined.

    With ``stage``, only those of the build stage of that name (``FROM ... AS stage``).
    """
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    parsed = [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]
    if stage is None:
        return parsed
    selected: list[tuple[str, str]] = []
    current = None
    for keyword, arguments in parsed:
        if keyword == "FROM":
            current = arguments.split()[-1] if " AS " in arguments.upper() else None
        if current == stage:
            selected.append((keyword, arguments))
    return selected


def entrypoint_env(base: dict[str, str] | None = None, /, **variables: str) -> dict[str, str]:
    """The environment of the entrypoint: ``base`` (this process's) without the variables the
    roles read, this project's virtualenv first on PATH (as /opt/venv is in the image), then
    ``variables``."""
    own = ("WEB_CONCURRENCY", "WORKER_CONCURRENCY", "HOST", "PORT", "LOG_LEVEL", "ENTRYPOINT_DRY_RUN")
    env = {
        key: value
        for key, value in (base if base is not None else os.environ).items()
        if not key.startswith(("GUNICORN_", "CELERY_")) and key not in own
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(variables)
    return env


def dry_run(*args: str, **variables: str) -> list[str]:
    """The command lines the entrypoint would run for ``args``."""
    result = subprocess.run(
        [str(ENTRYPOINT), *args],
        cwd=PROJECT_DIR,
        env=entrypoint_env(ENTRYPOINT_DRY_RUN="1", **variables),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def healthcheck_command() -> list[str]:
    """The exec-form command of the image's HEALTHCHECK."""
    (arguments,) = [arguments for keyword, arguments in instructions() if keyword == "HEALTHCHECK"]
    command: list[str] = json.loads(arguments.split(" CMD ", 1)[1])
    return command


# --- Lint ------------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_the_dockerfile_passes_hadolint_without_a_single_finding() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.subprocess
def test_the_entrypoint_passes_shellcheck_as_a_posix_shell_script() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "shellcheck"), "--shell=sh", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- What the Dockerfile promises ---------------------------------------------------------------


def test_the_image_runs_python_3_11_slim_and_builds_the_stylesheet_in_a_node_stage() -> None:
    bases = [arguments for keyword, arguments in instructions() if keyword == "FROM"]
    assert bases[-1].startswith("python:3.11-slim")
    css_stage = instructions("css")
    assert ("RUN", "npm ci --no-audit --no-fund") in css_stage
    assert ("RUN", "npm run build:css") in css_stage
    runtime = instructions("runtime")
    assert ("COPY", "--from=css /build/static/css/app.css static/css/app.css") in runtime
    assert any("collectstatic" in arguments for keyword, arguments in runtime if keyword == "RUN")


# Packages scripts/install-system-packages.sh installs for the tests only, not the pipeline.
TEST_ONLY_PACKAGES = {"docker-compose", "nginx", "openssl"}


def test_the_image_installs_the_pipeline_packages_make_run_installs_plus_the_chosen_languages() -> None:
    runtime = instructions("runtime")
    assert ("ARG", 'TESSERACT_LANGUAGES="eng deu"') in runtime
    (install,) = [a for k, a in runtime if k == "RUN" and "apt-get install" in a]
    installed = set(install.split())
    script = (PROJECT_DIR / "scripts" / "install-system-packages.sh").read_text()
    probed = set(re.findall(r"^\s*\[([a-z0-9.+-]+)\]=", script, flags=re.MULTILINE))
    # The languages come from the build argument; the script names the default two.
    pipeline = probed - TEST_ONLY_PACKAGES - {"tesseract-ocr-eng", "tesseract-ocr-deu"}
    missing = (pipeline | {"postgresql-client"}) - installed
    assert not missing, f"add {sorted(missing)} to the Dockerfile (or to TEST_ONLY_PACKAGES)"
    assert '"${languages[@]/#/tesseract-ocr-}"' in installed
    # The build fails unless pg_dump matches the supported PostgreSQL (15).
    assert "/usr/lib/postgresql/15/bin/pg_dump" in install


def test_the_image_runs_as_a_numeric_non_root_user_with_workdir_as_a_volume() -> None:
    runtime = instructions("runtime")
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users == ["${APP_UID}:${APP_GID}"]
    assert ("ARG", "APP_UID=1000") in runtime
    assert ("VOLUME", '["/workdir"]') in runtime
    env = " ".join(arguments for keyword, arguments in runtime if keyword == "ENV")
    assert "WORKDIR=/workdir" in env
    # gunicorn finds gunicorn.conf.py only in its working directory, the project root.
    assert ("WORKDIR", "/app") in runtime
    assert ("ENTRYPOINT", '["tini", "--", "/app/docker/entrypoint.sh"]') in runtime
    assert ("CMD", '["api"]') in runtime


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = set((PROJECT_DIR / ".dockerignore").read_text().splitlines())
    assert {".env", ".git", ".venv/", "node_modules/", "workdir/", "staticfiles/"} <= ignored


# --- The entrypoint's roles ---------------------------------------------------------------------


@pytest.mark.subprocess
def test_an_unknown_role_stops_with_the_usage_and_a_non_zero_status() -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "webserver"], env=entrypoint_env(), capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "unknown role 'webserver'" in result.stderr
    assert "usage: entrypoint.sh {api|worker|beat|migrate|manage}" in result.stderr


@pytest.mark.subprocess
def test_no_role_at_all_also_shows_the_usage() -> None:
    result = subprocess.run(
        [str(ENTRYPOINT)], env=entrypoint_env(), capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "usage:" in result.stderr


@pytest.mark.subprocess
def test_the_api_role_starts_gunicorn_with_workers_threads_and_timeouts_from_the_environment() -> None:
    (command,) = dry_run(
        "api",
        "--log-level",
        "debug",
        WEB_CONCURRENCY="5",
        GUNICORN_THREADS="4",
        GUNICORN_TIMEOUT="300",
        GUNICORN_GRACEFUL_TIMEOUT="45",
        GUNICORN_KEEPALIVE="7",
        PORT="9000",
    )
    assert command == (
        "gunicorn docuelevate.wsgi:application --bind 0.0.0.0:9000 --workers 5 --threads 4"
        " --timeout 300 --graceful-timeout 45 --keep-alive 7 --worker-tmp-dir /dev/shm"
        " --access-logfile - --no-control-socket --log-level debug"
    )


@pytest.mark.subprocess
def test_the_api_role_defaults_to_two_workers_on_port_8000_of_every_interface() -> None:
    (command,) = dry_run("api")
    assert "--bind 0.0.0.0:8000 --workers 2 --threads 1 --timeout 120" in command


@pytest.mark.subprocess
def test_a_concurrency_that_is_not_a_number_stops_start_up_naming_the_variable() -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "api"],
        env=entrypoint_env(WEB_CONCURRENCY="four"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "WEB_CONCURRENCY must be a whole number, got 'four'" in result.stderr


@pytest.mark.subprocess
def test_the_worker_role_consumes_every_queue_unless_celery_queues_narrows_it() -> None:
    assert dry_run("worker") == [
        "celery -A docuelevate worker --queues document_processor,default,celery"
        " --concurrency 2 --loglevel INFO"
    ]
    assert dry_run(
        "worker", CELERY_QUEUES="document_processor", WORKER_CONCURRENCY="8", LOG_LEVEL="WARNING"
    ) == ["celery -A docuelevate worker --queues document_processor --concurrency 8 --loglevel WARNING"]


@pytest.mark.subprocess
def test_the_beat_role_is_quiet_and_leaves_the_scheduler_to_the_settings() -> None:
    (command,) = dry_run("beat")
    assert command == "celery --quiet -A docuelevate beat --loglevel INFO --pidfile="
    assert " -S" not in command
    assert "--scheduler" not in command


@pytest.mark.subprocess
def test_the_migrate_role_migrates_then_writes_the_schedule_then_bootstraps_the_operator() -> None:
    assert dry_run("migrate") == [
        "python manage.py migrate --noinput",
        "python manage.py setup_periodic_tasks",
        "python manage.py bootstrap_admin",
    ]


def test_the_migrate_role_prepares_a_fresh_database_and_creates_the_operator(
    embedded_env: dict[str, str],
) -> None:
    env = entrypoint_env(embedded_env)
    env.update(ADMIN_USERNAME="root", ADMIN_PASSWORD="a-long-operator-password")
    result = subprocess.run(
        [str(ENTRYPOINT), "migrate"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Created operator 'root'" in result.stdout
    with sqlite3.connect(Path(env["WORKDIR"]) / "db.sqlite3") as database:
        (tasks,) = database.execute("SELECT count(*) FROM django_celery_beat_periodictask").fetchone()
        (superuser,) = database.execute(
            "SELECT is_superuser FROM accounts_user WHERE username = 'root'"
        ).fetchone()
    assert tasks > 0
    assert superuser


def test_the_api_role_serves_the_live_probe_the_healthcheck_uses_and_stops_on_sigterm(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = entrypoint_env(embedded_env)
    env.update(HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="2")
    log = tmp_path / "api.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(ENTRYPOINT), "api"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def live_status() -> int | None:
            assert server.poll() is None, f"the api role exited\n{log_tail(log)}"
            try:
                return requests.get(f"http://127.0.0.1:{port}{LIVE_PROBE}", timeout=5).status_code
            except requests.ConnectionError:
                return None

        status = wait_until(
            live_status, timeout=60, what=f"an answer on port {port}", details=lambda: log_tail(log)
        )
        assert status == 200
        # The image's HEALTHCHECK, run as the container runtime would, finds it healthy.
        check = subprocess.run(healthcheck_command(), env=env, capture_output=True, timeout=30, check=False)
        assert check.returncode == 0, check.stderr
        # The shell replaced itself with gunicorn, so the runtime's SIGTERM reaches gunicorn.
        assert b"gunicorn" in Path(f"/proc/{server.pid}/cmdline").read_bytes()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, log_tail(log)
    finally:
        stop_process_group(server)
    # With the server gone, the same check reports the container unhealthy.
    check = subprocess.run(healthcheck_command(), env=env, capture_output=True, timeout=30, check=False)
    assert check.returncode != 0
