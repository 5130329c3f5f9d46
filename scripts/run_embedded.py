"""Start DocuElevate on one machine with no servers to install: ``make run``.

Prepares the embedded installation (a session secret kept under WORKDIR, migrations,
static files, an operator login), then runs the web server, a Celery worker and Celery
beat side by side under honcho's process manager. Ctrl-C stops all three; if one of them
dies, the others are stopped too, so nothing lingers half-running.

What a newcomer reads first is a short start: the address, the login, where the files are
kept and how to stop. The libraries' start-up chatter (Celery's banner and task lines,
gunicorn's boot lines and access log, Celery's warning about running as root) is left out
unless ``--verbose`` (``make run VERBOSE=1``) or ``LOG_LEVEL=DEBUG`` asks for everything;
the application's own lines, warnings and errors are always shown.

Settings come from the environment and, like the containers' ``env_file``, from ``.env``
in the project folder; a variable set in the environment wins over ``.env``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

from honcho.environ import parse as parse_env_file
from honcho.manager import Manager

PROJECT_DIR = Path(__file__).resolve().parent.parent
QUEUES = "document_processor,default,celery"
# Celery's SecurityWarning when a worker runs as root (a container's default, or `sudo make
# run`): a -W filter matches the start of the message. Only the quiet start leaves it out.
ROOT_WARNING_FILTER = "ignore:You're running the worker with superuser privileges"


def build_environment() -> dict[str, str]:
    """The environment every process gets: ``.env`` under the real environment."""
    env_file = PROJECT_DIR / ".env"
    environment = parse_env_file(env_file.read_text()) if env_file.exists() else {}
    environment.update(os.environ)
    environment.setdefault("HOST", "127.0.0.1")
    environment.setdefault("PORT", "8000")
    workdir = workdir_of(environment)
    workdir.mkdir(parents=True, exist_ok=True)
    if not environment.get("SESSION_SECRET") and not environment.get("SESSION_SECRET_FILE"):
        environment["SESSION_SECRET_FILE"] = str(ensure_session_secret(workdir / "session-secret"))
    return environment


def workdir_of(environment: dict[str, str]) -> Path:
    """WORKDIR as the settings read it: relative to the project folder."""
    workdir = Path(environment.get("WORKDIR", "workdir"))
    return workdir if workdir.is_absolute() else PROJECT_DIR / workdir


def ensure_session_secret(path: Path) -> Path:
    """Create a random session secret once, readable only by its owner.

    Kept on disk so logins survive restarts and all processes sign with the same key.
    """
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
    return path


def manage(environment: dict[str, str], *args: str) -> str:
    """Run a management command, stop with its message if it fails, return its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"manage.py {' '.join(args)} failed; see above.")
    return result.stdout.strip()


def process_commands(environment: dict[str, str], *, verbose: bool) -> dict[str, str]:
    """The three processes' command lines; quiet ones unless ``verbose``."""
    bin_dir = Path(sys.executable).parent
    host, port = environment["HOST"], environment["PORT"]
    # The application's request line (ops.requestlog) already names each request.
    web_logs = "--access-logfile - --log-level info" if verbose else "--log-level warning"
    celery = f"{bin_dir}/celery" if verbose else f"{bin_dir}/celery --quiet"  # --quiet: no banner
    # A sync worker reading an upload tells the arbiter nothing until it answers: with
    # gunicorn's own 30 s, a 1 GiB upload on a slow disk or link was killed half-stored.
    # The image's default (docker/entrypoint.sh) instead.
    timeout = environment.get("GUNICORN_TIMEOUT", "120")
    return {
        "web": (
            f"{bin_dir}/gunicorn docuelevate.wsgi --bind {host}:{port} "
            f"--workers {environment.get('WEB_CONCURRENCY', '2')} --timeout {timeout} {web_logs} "
            "--no-control-socket"
        ),
        "worker": (
            f"{celery} -A docuelevate worker --queues {QUEUES} "
            f"--concurrency {environment.get('WORKER_CONCURRENCY', '2')} --loglevel INFO"
        ),
        # No pidfile: a stale one after a crash would stop beat from starting again.
        "beat": f"{celery} -A docuelevate beat --loglevel INFO --pidfile=",
    }


def quiet_environment(environment: dict[str, str]) -> dict[str, str]:
    """``environment`` for a quiet start: the libraries' INFO lines and the root warning off.

    A level the user chose for the libraries is kept.
    """
    quiet = dict(environment)
    quiet.setdefault("LOG_LEVEL_LIBRARIES", "WARNING")
    quiet["PYTHONWARNINGS"] = ",".join(filter(None, [quiet.get("PYTHONWARNINGS"), ROOT_WARNING_FILTER]))
    return quiet


def files_kept(environment: dict[str, str]) -> str:
    """Where this installation keeps its files, in one sentence."""
    workdir = workdir_of(environment)
    if environment.get("DOCUMENT_STORAGE", "local").lower() == "s3":
        bucket = environment.get("DOCUMENT_STORAGE_S3_BUCKET", "")
        return f"Documents are kept in the S3 bucket {bucket!r}; working files in {workdir}."
    return f"Documents, database and queue are kept in {workdir}."


def start_banner(*, host: str, port: str, login: str, files: str, verbose: bool) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    lines = [
        f"DocuElevate is starting at http://{shown_host}:{port}/",
        f"  {login}",
        f"  {files}",
        "  Press Ctrl-C to stop."
        + ("" if verbose else " `make run VERBOSE=1` shows every process's own start-up lines."),
    ]
    return "\n" + "\n".join(lines) + "\n"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Start DocuElevate on this machine.")
    parser.add_argument(
        "--verbose", action="store_true", help="show every process's start-up lines and library logs"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    environment = build_environment()
    verbose = arguments.verbose or environment.get("LOG_LEVEL", "").upper() == "DEBUG"
    if not verbose:
        environment = quiet_environment(environment)
    # The preparation steps speak only when something goes wrong: their INFO lines (the
    # audit line of a created login, for one) would split the start message.
    preparing = environment if verbose else {**environment, "LOG_LEVEL": "WARNING"}
    for step in (
        ("migrate", "--noinput"),
        # Part of every migrate step: beat reads its schedule from the database (ops/schedule.py).
        ("setup_periodic_tasks",),
        ("collectstatic", "--noinput"),
    ):
        output = manage(preparing, *step)
        if verbose and output:
            print(output)
    said = manage(preparing, "bootstrap_admin", "--generate-if-missing").splitlines()
    # The command's own sentence comes last; any log line before it shows only when verbose.
    login = said[-1] if said else "Log in with your operator account."
    if verbose and said[:-1]:
        print("\n".join(said[:-1]))

    print(
        start_banner(
            host=environment["HOST"],
            port=environment["PORT"],
            login=login,
            files=files_kept(environment),
            verbose=verbose,
        )
    )
    sys.stdout.flush()

    manager = Manager()
    for name, command in process_commands(environment, verbose=verbose).items():
        manager.add_process(name, command, env=environment, cwd=str(PROJECT_DIR))
    manager.loop()
    # Ctrl-C (130) and SIGTERM (143) are the normal way to stop; only a crash is an error.
    return 0 if manager.returncode in (None, 0, 130, 143) else manager.returncode


if __name__ == "__main__":
    sys.exit(main())
