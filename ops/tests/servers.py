"""A PostgreSQL cluster and a Redis server of a test's own, which the test may stop and start
again: never the machine's shared ones, which other tests use. The probe tests
(ops/tests/test_probes.py) and the outage tests (documents/tests/test_service_outages.py)
both use them; the root conftest loads this module as a plugin, so its fixtures are found
by name everywhere.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from conftest import _free_port, run_manage, service_missing, stop_process_group, wait_until

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary folder, on a free port of 127.0.0.1."""

    folder: Path
    port: int
    run_as: list[str]  # PostgreSQL refuses to run as root: then it runs as "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = [*self.run_as, _tool("pg_ctl"), "-D", str(self.folder / "data"), "-o", options]
        subprocess.run([*command, "-l", str(self.folder / "log"), "-w", *args], check=True, timeout=60)

    def start(self) -> None:
        self.pg_ctl("start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")


def _tool(name: str) -> str:
    found = shutil.which(name) or (str(POSTGRES_BIN / name) if (POSTGRES_BIN / name).exists() else None)
    if found is None:
        service_missing(f"{name} is not installed (PostgreSQL server binaries)")
    return str(found)


def _run_as_postgres(folder: Path) -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        service_missing("running as root and there is no postgres account to run PostgreSQL as")
    runuser = shutil.which("runuser")
    if runuser is None:
        service_missing("running as root and runuser is missing to run PostgreSQL as postgres")
    os.chown(folder, account.pw_uid, account.pw_gid)
    return [str(runuser), "-u", "postgres", "--"]


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    initdb = _tool("initdb")
    # Not under pytest's tmp_path: that is private to root, and the cluster may run as postgres.
    folder = Path(tempfile.mkdtemp(prefix="docuelevate-pg-"))
    cluster = ThrowawayPostgres(folder, _free_port(), _run_as_postgres(folder))
    try:
        subprocess.run(
            [
                *cluster.run_as,
                initdb,
                "-D",
                str(folder / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        yield cluster
    finally:
        if (folder / "data" / "postmaster.pid").exists():
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class MigratedDatabase:
    """The throwaway cluster, migrated, with one user and an API token of theirs."""

    cluster: ThrowawayPostgres
    token: str  # an API token of a user in it, for /api/health


@pytest.fixture(scope="module")
def migrated_postgres(
    throwaway_postgres: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> MigratedDatabase:
    env = server_env(dict(os.environ), throwaway_postgres, tmp_path_factory.mktemp("migrate"))
    migrated = run_manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    made = run_manage(
        env,
        "shell",
        "-c",
        "from accounts.services import token_create; from accounts.tests.factories import UserFactory; "
        "print(token_create(user=UserFactory.create(username='prober'), name='probe')[1])",
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return MigratedDatabase(throwaway_postgres, made.stdout.strip().splitlines()[-1])


def server_env(base: dict[str, str], cluster: ThrowawayPostgres, workdir: Path) -> dict[str, str]:
    """``base`` for a process of this project on ``cluster`` with ``workdir``, and no Redis
    (a test that wants one names its own)."""
    env = {**base, "WORKDIR": str(workdir), "DATABASE_URL": cluster.url}
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        env.pop(name, None)
    return env


class ThrowawayRedis:
    """A redis-server of the test's own, without persistence, that the test may stop."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server is not installed")
        self.binary = str(binary)
        self.port = _free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.folder),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=20, what=f"redis-server on port {self.port}", interval=0.1)

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process, grace=10)
            self.process = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()
