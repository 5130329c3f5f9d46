"""Fixtures shared by every app's tests: personas, services, real processes, the clock;
and the one rule that says which tests are slow."""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from time_machine import TimeMachineFixture

from accounts.models import User
from accounts.tests.factories import UserFactory
from documents.tests.samples import Samples

# The throwaway PostgreSQL cluster and Redis server, whose fixtures the probe and outage tests share.
pytest_plugins = ["ops.tests.servers"]

PROJECT_DIR = Path(__file__).resolve().parent
T = TypeVar("T")
ALL_QUEUES = "document_processor,default,celery"


def service_missing(reason: str) -> None:
    """Skip a test whose service is absent; in CI (CI=true) that is a failure instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must provide it", pytrace=False)
    pytest.skip(reason)


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    details: Callable[[], str] = lambda: "",
) -> T:
    """Ask ``condition`` until it gives a true value, and return that; fail naming ``what``
    (and ``details()``, such as a process's log) once ``timeout`` seconds have passed.

    The one way a test waits for another process or thread: never a fixed sleep, which is
    too short on a busy machine and time lost on an idle one.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{details()}", pytrace=False)
        time.sleep(interval)
    return value


# --- Which tests are slow --------------------------------------------------------------------
#
# A test is slow when it starts a process or runs a system program (OCR, LibreOffice, a Celery
# worker, gunicorn, Chromium, nginx, docker-compose, git, pg_dump ...); `make test-fast` runs
# the others (`-m "not slow"`). A test never says `slow` itself: pytest_collection_modifyitems
# marks it from what it declares,
# - a fixture of SLOW_FIXTURES, which start processes or run programs (asked for directly or
#   through another fixture), or
# - the `subprocess` marker, for a test that runs a program itself;
# and a test of the fast set that starts a process anyway fails, naming the program.

SLOW_FIXTURES = frozenset(
    {
        # Here: the pipeline's programs, a process of this project (any environment made for
        # one: process_env, embedded_env), a Celery worker, gunicorn, Chromium.
        "engines",
        "process_env",
        "start_worker",
        "start_gunicorn",
        "browser",
        # In the test modules that start servers of their own.
        "tailwind",  # docuelevate/tests/test_stylesheet.py: npm and Tailwind's CLI
        "nginx_site",  # scripts/tests/test_reverse_proxy.py: nginx in front of a stand-in
        "compose_project",  # scripts/tests/test_compose.py: docker-compose config
        "throwaway_postgres",  # ops/tests/servers.py: a PostgreSQL cluster of its own
        "throwaway_redis",  # ops/tests/servers.py: a Redis server of its own
        "start_beat",  # ops/tests/test_beat_heartbeat.py: celery beat
        "sftp_server",  # destinations/tests/servers: Debian's sshd, with an account of its own
        "ssh_client_keys",  # destinations/tests/servers: the SFTP clients' keys, by ssh-keygen
        "dovecot_server",  # sources/tests/servers: Debian's Dovecot, IMAPS with throwaway accounts
        "oauth_dovecot_server",  # sources/tests/servers: the same, also taking XOAUTH2 sign-ins
    }
)

# The events Python raises before it starts a process (sys.addaudithook).
SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork", "os.forkpty"}
)
# What the standard library runs by itself to learn about the machine (platform's `uname -p`,
# ctypes.util.find_library's `ldconfig -p`), whichever test first asks: no program a test needs.
MACHINE_PROBES = frozenset({"uname", "ldconfig"})


class _SpawnWatch:
    """The programs the current fast test started in its set-up and run; None otherwise (a
    slow test, a teardown, or a session-wide fixture made once for every test, such as the
    static files)."""

    started: list[str] | None = None


def _program(event: str, args: tuple[Any, ...]) -> str:
    """The name of the program an audit event starts (``args`` as Python documents them)."""
    if event in ("os.fork", "os.forkpty"):
        return "a fork of the test process"
    if event == "os.system":
        command = args[0]
    elif event == "os.spawn":
        command = args[2]
    else:  # subprocess.Popen (executable, args, ...), os.exec and os.posix_spawn (path, args, ...)
        command = args[1]
    if isinstance(command, str | bytes | os.PathLike):
        command = os.fsdecode(command).split()[:1]
    return Path(os.fsdecode(command[0])).name if command else "?"


def _watch_spawns(event: str, args: tuple[Any, ...]) -> None:
    started = _SpawnWatch.started
    if started is not None and event in SPAWN_EVENTS:
        program = _program(event, args)
        if program not in MACHINE_PROBES:
            started.append(program)


def pytest_configure(config: pytest.Config) -> None:
    sys.addaudithook(_watch_spawns)  # for the whole run; it only looks while a fast test runs
    # Under the `clock`, uuid1() cannot use libuuid and asks for this machine's address,
    # which Python finds by running `ip link` once; asked here, it is known from libuuid.
    uuid.getnode()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests, before `-m "not slow"` leaves them out."""
    for item in items:
        if item.get_closest_marker("slow"):
            raise pytest.UsageError(
                f"{item.nodeid} sets the `slow` marker itself; a test is slow by what it declares: "
                "a fixture of conftest.SLOW_FIXTURES, or @pytest.mark.subprocess"
            )
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("subprocess") or fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _SpawnWatch.started = None if item.get_closest_marker("slow") else []
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        result = yield
    finally:
        # Not the teardown: the last test of a module also stops what its module's fixtures
        # started, on behalf of every test that used them.
        started, _SpawnWatch.started = _SpawnWatch.started, None
    if started:
        pytest.fail(
            f"{item.nodeid} started {', '.join(sorted(set(started)))}, yet it is in the fast set "
            "(make test-fast): ask for the fixture that starts it (conftest.SLOW_FIXTURES) or, "
            "where the test runs the program itself, mark it @pytest.mark.subprocess",
            pytrace=False,
        )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any]) -> Iterator[Any]:
    """A session-wide fixture is made once, for whichever test comes first: not that test's."""
    if fixturedef.scope != "session":
        return (yield)
    watching, _SpawnWatch.started = _SpawnWatch.started, None
    try:
        return (yield)
    finally:
        _SpawnWatch.started = watching


# --- The clock ---------------------------------------------------------------------------------

# An ordinary Wednesday afternoon in UTC, far from midnight, a month's end and a change of
# daylight saving time, so "today", "30 days ago" and "in an hour" each mean one thing for
# the whole of a test, whenever it runs.
CLOCK_START = datetime.datetime(2025, 6, 11, 14, 0, tzinfo=datetime.UTC)


@pytest.fixture
def clock(time_machine: TimeMachineFixture) -> TimeMachineFixture:
    """The time, stopped at CLOCK_START; a test moves it with ``clock.shift(seconds or
    timedelta)`` or ``clock.move_to(when)``. For a test whose outcome depends on the date or on
    time passing: it never sleeps and never computes from the real date. Monotonic clocks
    (timeouts, deadlines) keep running."""
    time_machine.move_to(CLOCK_START, tick=False)
    return time_machine


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(settings: Any, request: pytest.FixtureRequest) -> None:
    """Every test starts with its whole rate-limit budget, whatever ran before or beside it."""
    own = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": f"ratelimit-{request.node.nodeid}",
    }
    settings.CACHES = {**settings.CACHES, "ratelimit": own}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Tests make many users; the production hasher is slow on purpose, these need not be."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Long enough for a ping to find no answer on a fast test's broker, short enough that the
# health, status and metrics tests do not each wait out a worker ping's whole second.
FAST_WORKER_PING_TIMEOUT = 0.1


@pytest.fixture(autouse=True)
def _short_worker_ping(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast test has no worker (those that start one are slow: SLOW_FIXTURES), so a
    Celery ping there can only wait for nobody; it waits a tenth of a second instead of the
    second (or more) it was given. What the probe reports is unchanged: it names its own
    timeout, and no worker answers either way. Slow tests keep the real wait."""
    if request.node.get_closest_marker("slow"):
        return
    from celery.app.control import Control

    ping = Control.ping

    def short_ping(self: Control, destination: Any = None, timeout: float = 1.0, **kwargs: Any) -> Any:
        return ping(self, destination=destination, timeout=min(timeout, FAST_WORKER_PING_TIMEOUT), **kwargs)

    monkeypatch.setattr(Control, "ping", short_ping)


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    """The test documents of documents/tests/samples.py, each made when a test first asks."""
    return Samples(tmp_path_factory.mktemp("samples"), missing=service_missing)


# --- Personas ------------------------------------------------------------------------------


@pytest.fixture
def owner(db: None) -> User:
    return UserFactory.create(username="owner")


@pytest.fixture
def other_user(db: None) -> User:
    return UserFactory.create(username="other_user")


@pytest.fixture
def operator(db: None) -> User:
    return UserFactory.create(username="operator", is_staff=True)


@pytest.fixture
def anonymous() -> AnonymousUser:
    return AnonymousUser()


# --- Static files --------------------------------------------------------------------------


# Production's static storage without whitenoise's gzip and Brotli copies of every file: the
# manifest of hashed names is the same, and no test reads a compressed copy. Compressing the
# 1,000 files of the admin and the API docs took 43 s of CPU at the start of every run.
UNCOMPRESSED_STATIC_STORAGE = {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}


@pytest.fixture(scope="session", autouse=True)
def _collected_static_files() -> None:
    """Pages use the hashed-name static storage of production, which needs collectstatic."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": UNCOMPRESSED_STATIC_STORAGE}):
        call_command("collectstatic", interactive=False, verbosity=0)


# --- System programs -------------------------------------------------------------------------

# The system programs the pipeline runs; scripts/install-system-packages.sh installs them.
PIPELINE_PROGRAMS = ("tesseract", "gs", "qpdf", "pdftotext", "pdftoppm", "soffice", "zip")


@pytest.fixture
def engines() -> None:
    """The system programs the pipeline runs: a test that processes a document needs them,
    one that only stores, lists or serves a file does not."""
    missing = [program for program in PIPELINE_PROGRAMS if shutil.which(program) is None]
    if missing:
        service_missing(f"{', '.join(missing)} not installed (run scripts/install-system-packages.sh)")


# --- Real processes ------------------------------------------------------------------------
def current_database_url() -> str:
    """The URL of the database this test runs on, for processes started by the test."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgresql://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def process_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess of this project with its own WORKDIR."""
    env = child_env(dict(os.environ))
    env["WORKDIR"] = str(tmp_path / "workdir")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def embedded_env(process_env: dict[str, str]) -> dict[str, str]:
    """The embedded defaults: no database server, no Redis, whatever the outer run uses."""
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        process_env.pop(name, None)
    return process_env


@pytest.fixture
def redis_url() -> str:
    """A Redis database of the tests' own (15 by default), emptied first."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        service_missing(f"Redis is not reachable at {url} ({exc.__class__.__name__})")
    return url


# Set in this process for the browser tests only (see ``browser``); a process the tests start
# must run as it would in production (``check --deploy`` rightly refuses this one).
TEST_PROCESS_ONLY = ("DJANGO_ALLOW_ASYNC_UNSAFE",)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a process a test starts, without what belongs to the test process alone."""
    return {name: value for name, value in env.items() if name not in TEST_PROCESS_ONLY}


def run_manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` in a subprocess and return what it printed."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real Celery workers (stopped at the end of the test); their log is in tmp_path.

    Each worker leads its own process group, so a test can kill it with everything it
    started, as a container runtime would.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(
        env: dict[str, str], queues: str = ALL_QUEUES, name: str | None = None
    ) -> subprocess.Popen[bytes]:
        name = name or f"test-{uuid.uuid4().hex[:8]}"
        log = (tmp_path / f"{name}-{len(started)}.log").open("wb")
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "docuelevate", "worker",
                "--queues", queues, "--pool", "solo", "--loglevel", "INFO",
                "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip",
            ],
            cwd=PROJECT_DIR, env=child_env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        started.append(worker)
        return worker

    yield start
    for worker in started:
        stop_process_group(worker)


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """Stop a process started with ``start_new_session=True`` and whatever it left running."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# --- The site under gunicorn -----------------------------------------------------------------


@dataclass(frozen=True)
class LiveServer:
    """A running gunicorn: where to reach it, and where its output goes."""

    url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def log_tail(path: Path, characters: int = 4000) -> str:
    """The end of a process's log, for a failure message."""
    return path.read_text(errors="replace")[-characters:] if path.exists() else "(no log)"


def log_tails(folder: Path, characters: int = 3000) -> Callable[[], str]:
    """The ends of the process logs in ``folder`` (a worker's, a server's), read when called:
    for ``wait_until(details=...)``, once the processes have written them."""
    return lambda: "\n".join(log_tail(path, characters) for path in sorted(folder.glob("*.log")))


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], LiveServer]]:
    """Start the site under gunicorn on a free port of 127.0.0.1, as it runs in production.

    Give it the environment of the worker (``worker_env``) so both share the test's
    database, WORKDIR and broker. Its output goes to a file in tmp_path, whose end is shown
    when the test fails; it leads its own process group, stopped at the end of the test.
    """
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(env: dict[str, str]) -> LiveServer:
        port = _free_port()
        log = tmp_path / f"gunicorn-{len(started)}.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn", "docuelevate.wsgi:application",
                    "--bind", f"127.0.0.1:{port}", "--workers", "2", "--access-logfile", "-",
                ],
                cwd=PROJECT_DIR, env=child_env(env), stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append((server, log))
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if server.poll() is not None:
                pytest.fail(f"gunicorn exited with {server.returncode}\n{log_tail(log)}")
            try:
                # Any answer means it serves (a redirect to HTTPS too, behind a declared proxy).
                requests.get(f"{url}/api/whoami", timeout=5, allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout):
                # A worker's first request imports half the project: on a busy machine it may
                # take longer than the timeout, and the server is then still starting.
                return False
            return True

        wait_until(answers, timeout=60, what=f"gunicorn to answer on {url}", details=lambda: log_tail(log))
        return LiveServer(url=url, log=log)

    yield start
    for server, log in started:
        stop_process_group(server)
        # Printed at teardown, so pytest shows it only for a failed test.
        print(f"--- end of {log.name} ---\n{log_tail(log)}")


def server_accepted(connection: socket.socket) -> bool:
    """Whether a process took ``connection`` (to 127.0.0.1) from its server's listen queue.

    A connection still waiting there has no socket of its own, which /proc/net/tcp shows as
    inode 0; accept() gives it one. So a test knows that a sync gunicorn worker is busy with
    a request, rather than sleeping and hoping.
    """
    server_port, client_port = connection.getpeername()[1], connection.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
        if (local_port, remote_port) == (server_port, client_port):
            return fields[9] != "0"
    return False


def set_password_as_server(env: dict[str, str], user: User, password: str) -> None:
    """Set ``user``'s password in the database ``env`` names, with the server's own hasher:
    the tests' fast one (``_fast_password_hashing``) is not among a started server's."""
    code = (
        "from accounts.models import User; "
        f"user = User.objects.get(pk={user.pk}); user.set_password({password!r}); user.save()"
    )
    result = run_manage(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr


# --- A real browser ------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, installed by `make test`; never `playwright install`
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    if not CHROMIUM.exists():
        service_missing(f"Chromium is not installed at {CHROMIUM} (make test installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, which makes Django
    # refuse database calls (the test's own set-up and flush) as if they came from async code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@dataclass
class BrowserPage:
    """A browser tab, and every console error, uncaught exception and CSP violation it saw."""

    page: Any
    problems: list[str]

    def sign_in(self, server: LiveServer, username: str, password: str, *, then: str = "/") -> None:
        """Sign in through the login form, as a person does, and wait to land on ``then``."""
        self.page.goto(f"{server.url}/accounts/login/?next={then}")
        self.page.locator("input[name=login]").fill(username)
        self.page.locator("input[name=password]").fill(password)
        self.page.locator("form:has(input[name=password]) [type=submit]").click()
        self.page.wait_for_url(f"{server.url}{then}")


@pytest.fixture
def browser_page(browser: Any) -> Iterator[BrowserPage]:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    # A violation is also an event in the page, whether or not the console shows it.
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    yield BrowserPage(page=page, problems=problems)
    context.close()
