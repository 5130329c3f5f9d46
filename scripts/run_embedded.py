"""Start DocuElevate on one machine with no servers to install: ``make run``.

Prepares the embedded installation (a session secret kept under WORKDIR, migrations,
static files, an operator login), then runs the web server, a Celery worker and Celery
beat side by side under honcho's process manager. Ctrl-C stops all three; if one of them
dies, the others are stopped too, so nothing lingers half-running.

Settings come from the environment and, like the containers' ``env_file``, from ``.env``
in the project folder; a variable set in the environment wins over ``.env``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from honcho.environ import parse as parse_env_file
from honcho.manager import Manager

PROJECT_DIR = Path(__file__).resolve().parent.parent
QUEUES = "document_processor,default,celery"


def build_environment() -> dict[str, str]:
    """The environment every process gets: ``.env`` under the real environment."""
    env_file = PROJECT_DIR / ".env"
    environment = parse_env_file(env_file.read_text()) if env_file.exists() else {}
    environment.update(os.environ)
    environment.setdefault("HOST", "127.0.0.1")
    environment.setdefault("PORT", "8000")
    workdir = Path(environment.get("WORKDIR", "workdir"))
    workdir = workdir if workdir.is_absolute() else PROJECT_DIR / workdir
    workdir.mkdir(parents=True, exist_ok=True)
    if not environment.get("SESSION_SECRET") and not environment.get("SESSION_SECRET_FILE"):
        environment["SESSION_SECRET_FILE"] = str(ensure_session_secret(workdir / "session-secret"))
    return environment


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


def main() -> int:
    environment = build_environment()
    host, port = environment["HOST"], environment["PORT"]
    manage(environment, "migrate", "--noinput")
    # Part of every migrate step: beat reads its schedule from the database (ops/schedule.py).
    manage(environment, "setup_periodic_tasks")
    manage(environment, "collectstatic", "--noinput")
    login = manage(environment, "bootstrap_admin", "--generate-if-missing")

    bin_dir = Path(sys.executable).parent
    processes = {
        "web": (
            f"{bin_dir}/gunicorn docuelevate.wsgi --bind {host}:{port} "
            f"--workers {environment.get('WEB_CONCURRENCY', '2')} --access-logfile - --no-control-socket"
        ),
        "worker": (
            f"{bin_dir}/celery -A docuelevate worker --queues {QUEUES} "
            f"--concurrency {environment.get('WORKER_CONCURRENCY', '2')} --loglevel INFO"
        ),
        # No pidfile: a stale one after a crash would stop beat from starting again.
        "beat": f"{bin_dir}/celery -A docuelevate beat --loglevel INFO --pidfile=",
    }
    shown_host = f"[{host}]" if ":" in host else host
    print(f"\nDocuElevate is starting at http://{shown_host}:{port}/\n{login}\nPress Ctrl-C to stop.\n")
    sys.stdout.flush()

    manager = Manager()
    for name, command in processes.items():
        manager.add_process(name, command, env=environment, cwd=str(PROJECT_DIR))
    manager.loop()
    # Ctrl-C (130) and SIGTERM (143) are the normal way to stop; only a crash is an error.
    return 0 if manager.returncode in (None, 0, 130, 143) else manager.returncode


if __name__ == "__main__":
    sys.exit(main())
