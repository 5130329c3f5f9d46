"""``make run`` on the embedded defaults: pages served, tasks run, Ctrl-C stops everything."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from conftest import PROJECT_DIR, wait_until
from ops.tests.test_worker import await_result, send_ping


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, log: Path, timeout: float = 120) -> requests.Response:
    def answer() -> list[requests.Response]:
        """The answer, in a list: a response with an error status is false, yet an answer."""
        try:
            return [requests.get(url, timeout=5)]
        # A worker's first request imports half the project: on a busy machine it may take
        # longer than the timeout while the server is still starting.
        except (requests.ConnectionError, requests.Timeout):
            return []

    answered = wait_until(
        answer,
        timeout=timeout,
        what=f"{url} to answer",
        interval=0.5,
        details=lambda: f"log:\n{log.read_text()}",
    )
    return answered[0]


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited and only waits to be reaped


def test_make_run_serves_pages_runs_tasks_and_stops_on_ctrl_c(embedded_env, tmp_path):
    port = free_port()
    embedded_env.update({"HOST": "127.0.0.1", "PORT": str(port)})
    embedded_env.pop("SESSION_SECRET", None)  # the launcher must provide its own
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, "scripts/run_embedded.py"],
            cwd=PROJECT_DIR, env=embedded_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(f"{base}/", log_path).status_code == 200
        output = log_path.read_text()
        # What a newcomer reads first: the address, the login, where the files are, how to
        # stop; then the three processes starting, and nothing of the libraries' banners.
        start = [line for line in output.split(" system | ", 1)[0].splitlines()[:-1] if line.strip()]
        assert start[0] == f"DocuElevate is starting at {base}/", output
        password = re.fullmatch(r"  Log in as 'admin' with password '([^']+)'\.", start[1])
        assert password, output
        assert start[2] == f"  Documents, database and queue are kept in {embedded_env['WORKDIR']}.", output
        assert start[3].startswith("  Press Ctrl-C to stop."), output
        assert len(start) == 4, output

        browser = requests.Session()
        # The admin sends the browser to the site's sign-in form, which brings it back.
        login_page = browser.get(f"{base}/admin/", timeout=10)
        assert login_page.status_code == 200
        assert login_page.url == f"{base}/accounts/login/?next=%2Fadmin%2F"
        logged_in = browser.post(
            login_page.url,
            data={
                "login": "admin",
                "password": password.group(1),
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": login_page.url},
            timeout=10,
        )
        assert logged_in.url == f"{base}/admin/"
        assert "Site administration" in logged_in.text

        secret_file = Path(embedded_env["WORKDIR"]) / "session-secret"
        shell_env = dict(embedded_env, SESSION_SECRET_FILE=str(secret_file))
        answer = await_result(shell_env, send_ping(shell_env))
        assert answer["pid"] > 0
    finally:
        launcher.send_signal(signal.SIGINT)
        returncode = launcher.wait(timeout=60)

    output = log_path.read_text()
    assert returncode == 0, output
    children = [int(pid) for pid in re.findall(r"\| \w+ started \(pid=(\d+)\)", output)]
    assert len(children) == 3, output
    wait_until(
        lambda: not [pid for pid in children if is_running(pid)],
        timeout=30,
        what=f"the launcher's processes {children} to end",
        details=lambda: output,
    )
    assert (Path(embedded_env["WORKDIR"]) / "db.sqlite3").exists()
    assert_no_library_chatter(output)


# Lines of Celery's banners, its root warning, and the libraries' INFO lines, which the
# quiet start leaves out (the worker above ran a task, so its task lines would be here).
LIBRARY_CHATTER = (
    "celery beat v",
    "-------------- celery@",
    "[queues]",
    "[tasks]",
    ". broker ->",
    "superuser privileges",
    "No hostname was supplied",
    "Booting worker",
    "Listening at:",
    " INFO celery.",
    " INFO kombu.",
)


def assert_no_library_chatter(output: str) -> None:
    shown = [line for line in output.splitlines() if any(words in line for words in LIBRARY_CHATTER)]
    assert shown == [], output
