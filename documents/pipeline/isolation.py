"""Run an engine that reads untrusted documents cut off from the network, with a bare environment.

A document can make the program reading it fetch things: an HTML ``<img>`` or stylesheet,
an ODF ``xlink:href``, an OOXML relationship with ``TargetMode="External"``, an RTF
``INCLUDEPICTURE`` field. Whatever the worker can reach (a cloud metadata service, the
database, an internal web server) would then end up in a PDF that anyone who may upload
can download. So the engine runs in a network namespace of its own, whose only interface
is a loopback that is down: every connection fails at once, 127.0.0.1 included.

Two ways to make that namespace, tried in order once per process:

- ``unshare --net``: needs CAP_SYS_ADMIN (a root service, the embedded run as root);
- ``unshare --user --map-root-user --net``: an unprivileged user namespace, for a service
  account (the image's non-root user; Docker and Kubernetes must allow it, see
  docs/security.md).

With ``CONVERTER_SANDBOX=namespace`` (the default) a machine that allows neither refuses
to convert, with the reason; nothing is converted with network access by accident.
``CONVERTER_SANDBOX=none`` is an operator's explicit statement that the worker has no
egress by other means; ``productioncheck`` warns about it.

The environment holds only a search path, a home and a locale. The worker's own (the
session secret, ``DATABASE_URL``, storage and AI keys) is not inherited.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from documents.pipeline.base import StepFailed

# The ways to get a network namespace, from the one that needs privileges to the one that
# needs none; unshare execs the command in place, so its pid is the engine's pid.
NAMESPACE_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("unshare", "--net", "--"),
    ("unshare", "--user", "--map-root-user", "--net", "--"),
)
PROBE_TIMEOUT = 10.0
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Isolation:
    """How engines are isolated in this process: the command prefix, or why there is none."""

    prefix: tuple[str, ...] | None
    reason: str

    @property
    def available(self) -> bool:
        return self.prefix is not None


@functools.cache
def network_isolation() -> Isolation:
    """The first namespace prefix that works here, found once per process."""
    failures = []
    for prefix in NAMESPACE_PREFIXES:
        try:
            probe = subprocess.run(
                [*prefix, "true"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=PROBE_TIMEOUT,
                env={"PATH": SAFE_PATH},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            failures.append(f"{' '.join(prefix[:-1])}: {exc.__class__.__name__}")
            continue
        how = " ".join(prefix[:-1])
        if probe.returncode == 0:
            return Isolation(prefix=prefix, reason=f"a network namespace of its own ({how})")
        said = probe.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        failures.append(f"{how}: {said[0][:160]}")
    return Isolation(prefix=None, reason="; ".join(failures))


def minimal_environment(home: Path) -> dict[str, str]:
    """What an engine may see of the environment: nothing the worker keeps secret."""
    return {
        "PATH": SAFE_PATH,
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


# The engines' own settings an operator may give the worker (tesseract's language data):
# passed on to them, unlike everything else the worker's environment holds.
ENGINE_SETTINGS_PASSED_ON = ("TESSDATA_PREFIX",)


def engine_environment(scratch: Path, **extra: str) -> dict[str, str]:
    """The environment of an engine that reads documents outside the network namespace (OCR,
    pdftotext, pdftoppm): ``minimal_environment`` with ``scratch`` as home and temporary
    folder, the engines' own settings, two malloc arenas for the memory cap, and ``extra``.
    Never the worker's secrets: a document that takes over a parser finds none."""
    env = minimal_environment(scratch)
    env.update({name: os.environ[name] for name in ENGINE_SETTINGS_PASSED_ON if name in os.environ})
    env.update(CAPPED_ENGINE_ENVIRONMENT)
    env.update(extra)
    return env


def isolated_command(command: list[str]) -> list[str]:
    """``command`` wrapped so that it runs without network, or StepFailed saying why it cannot."""
    if settings.CONVERTER_SANDBOX == "none":
        return command
    isolation = network_isolation()
    if isolation.prefix is None:
        raise StepFailed(
            "The converter cannot be cut off from the network on this worker, so the file was "
            f"not converted ({isolation.reason}). See CONVERTER_SANDBOX in docs/security.md."
        )
    return [*isolation.prefix, *command]


def memory_capped(command: list[str], limit: int) -> list[str]:
    """``command`` with its address space capped at ``limit`` bytes, inherited by every
    process it starts (each gets the cap of its own).

    util-linux's prlimit, beside unshare: it sets the limit on itself and then execs the
    engine, which keeps it. No preexec_fn, which is unsafe in a threaded process. Run it
    with CAPPED_ENGINE_ENVIRONMENT.
    """
    return ["prlimit", f"--as={limit}", "--", *command]


# Two malloc arenas, not eight per core: under an address-space cap every reserved arena
# counts, although it holds nothing (LibreOffice needed 512 MiB to start without this, about
# 400 MiB with it).
CAPPED_ENGINE_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}


# Exit statuses past this are the shells' way of saying a program was ended by a signal
# (128 + its number: an abort is 134) or could not be loaded (126, 127).
LAST_ORDINARY_EXIT = 125


def memory_cap_note(returncode: int, limit: int) -> str:
    """What to add to the reason of an engine that ran under ``limit`` bytes of address space
    and ended abnormally: a refused allocation shows as an abort, a crash or a library that
    could not be mapped, never as a message of its own. Empty for an ordinary failure (a
    damaged file's exit 1), whose own words say enough."""
    if 0 <= returncode <= LAST_ORDINARY_EXIT:
        return ""
    return (
        f" It may use at most {limit // (1024 * 1024)} MiB of memory (address space); "
        "a document that needs more ends it this way."
    )


def run_isolated(
    command: list[str], *, timeout: float, what: str, home: Path, memory_limit: int | None = None
) -> None:
    """Run an engine isolated; on timeout kill it with every process it started.

    ``home`` (a scratch folder) becomes its HOME and TMPDIR, so it writes no caches into
    the service account's home and leaves nothing behind. ``memory_limit`` (bytes) caps
    the engine's address space, so a document that makes it allocate without end fails
    the engine instead of the worker.
    """
    env = minimal_environment(home)
    if memory_limit is not None:
        command = memory_capped(command, memory_limit)
        env.update(CAPPED_ENGINE_ENVIRONMENT)
    process = subprocess.Popen(
        isolated_command(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise StepFailed(f"{what} did not finish within {int(timeout)} seconds.") from None
    if process.returncode != 0:
        last = output.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        note = memory_cap_note(process.returncode, memory_limit) if memory_limit is not None else ""
        raise StepFailed(f"{what} failed (exit {process.returncode}: {last[0][:200]}).{note}")
