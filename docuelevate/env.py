"""Typed readers for the environment.

Every setting comes from the environment through these helpers, so a bad value stops the
process at start-up with a message that names the variable, instead of surfacing later as
a confusing error deep in a request. Each helper also honours ``NAME_FILE``: the value is
read from that file (Docker and Kubernetes secrets), with one trailing newline removed.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

# Values that ship in examples and guides; a secret equal to one of these is as good as none.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "admin",
        "changeme",
        "change-me",
        "change_me",
        "password",
        "secret",
        "your-secret-key",
        "your_secret_key",
        "your_secure_password",
        "replace-me-with-a-long-random-string-of-at-least-32-characters",
    }
)


class EnvError(ImproperlyConfigured):
    """A variable is missing or malformed; the message names it."""


def _lookup(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Return the raw value of ``name`` or the content of ``NAME_FILE``, else None."""
    environ = os.environ if environ is None else environ
    file_name = f"{name}_FILE"
    direct = environ.get(name)
    file_path = environ.get(file_name)
    # An empty NAME (as an unfilled .env line leaves it) does not conflict with NAME_FILE.
    if direct and file_path:
        raise EnvError(f"{name} and {file_name} are both set; set only one of them.")
    if file_path:
        try:
            content = Path(file_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise EnvError(f"{file_name}: cannot read {file_path!r} ({exc.strerror}).") from exc
        return content[:-1] if content.endswith("\n") else content
    return direct


def env_str(name: str, default: str = "", *, environ: Mapping[str, str] | None = None) -> str:
    """A string; an unset variable gives ``default``."""
    value = _lookup(name, environ)
    return default if value is None else value


def env_optional(name: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """A string, or None when the variable is unset or empty."""
    value = _lookup(name, environ)
    return value if value else None


def env_choice(
    name: str, default: str, choices: tuple[str, ...], *, environ: Mapping[str, str] | None = None
) -> str:
    """One of ``choices`` (compared case-insensitively, returned as spelled in ``choices``)."""
    value = _lookup(name, environ)
    if value is None or value == "":
        return default
    by_folded = {choice.casefold(): choice for choice in choices}
    try:
        return by_folded[value.strip().casefold()]
    except KeyError:
        raise EnvError(f"{name}={value!r} is not one of {', '.join(choices)}.") from None


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    """A strict boolean: true/false, 1/0, yes/no, on/off. Anything else is an error.

    Strict because a typo such as ``AUTH_ENABLED=flase`` must not silently mean true.
    """
    value = _lookup(name, environ)
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise EnvError(f"{name}={value!r} is not a boolean; use true or false.")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """An integer, optionally bounded."""
    value = _lookup(name, environ)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise EnvError(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise EnvError(f"{name}={number} is below the minimum of {minimum}.")
    if maximum is not None and number > maximum:
        raise EnvError(f"{name}={number} is above the maximum of {maximum}.")
    return number


def env_list(
    name: str,
    default: list[str] | None = None,
    *,
    separator: str = ",",
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """A separated list with blanks dropped: ``a, b,,c`` gives ``["a", "b", "c"]``."""
    value = _lookup(name, environ)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(separator) if item.strip()]


def env_networks(
    name: str, *, environ: Mapping[str, str] | None = None
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma-separated list of networks (``10.0.0.0/8``, ``fd00::/8``, or single addresses)."""
    networks = []
    for item in env_list(name, environ=environ):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise EnvError(f"{name}: {item!r} is not a network such as 10.0.0.0/8 or an address.") from None
    return tuple(networks)


def env_int_list(name: str, default: list[int], *, environ: Mapping[str, str] | None = None) -> list[int]:
    """A comma-separated list of non-negative integers, e.g. retry delays ``60,300,900``."""
    items = env_list(name, None, environ=environ)
    if not items:
        return list(default)
    try:
        numbers = [int(item) for item in items]
    except ValueError:
        raise EnvError(f"{name} must be comma-separated whole numbers, got {items!r}.") from None
    if any(number < 0 for number in numbers):
        raise EnvError(f"{name} must not contain negative numbers.")
    return numbers


# django-ratelimit's rate syntax: a count per period, the period optionally multiplied.
_RATE = re.compile(r"(?P<count>\d+)/(?P<multiplier>\d*)(?P<unit>[smhd])")


def env_rate(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> str:
    """A request rate such as ``100/m`` or ``5/10s`` (s, m, h, d), returned in lower case.

    Checked here because django-ratelimit parses a rate only when a request arrives, where
    a typo would break every request it applies to instead of stopping the start.
    """
    value = _lookup(name, environ)
    if value is None or value.strip() == "":
        return default
    rate = value.strip().lower()
    match = _RATE.fullmatch(rate)
    # A multiplier of 0 would make a period of no time at all.
    if match is None or match["multiplier"].startswith("0"):
        raise EnvError(
            f"{name}={value!r} is not a rate; use <count>/<period> with a period of s, m, h or d, "
            "e.g. 100/m or 5/10s."
        )
    if int(match["count"]) < 1:
        raise EnvError(f"{name}={value!r} would refuse every request; the count must be at least 1.")
    return rate


def env_path(name: str, default: Path, *, base: Path, environ: Mapping[str, str] | None = None) -> Path:
    """An absolute path; a relative value is taken relative to ``base`` (the project)."""
    value = _lookup(name, environ)
    path = Path(value).expanduser() if value else default
    if not path.is_absolute():
        path = base / path
    return path.resolve()


def env_secret(
    name: str,
    *,
    min_length: int,
    required: bool,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """A secret that must be strong enough to protect something.

    Refuses values shorter than ``min_length``, known placeholders from guides and
    examples, and a single repeated character. The value itself never appears in the
    error, since start-up errors end up in logs.
    """
    value = _lookup(name, environ)
    if value is None or value == "":
        if required:
            raise EnvError(f"{name} is required; set it (or {name}_FILE) to a random value.")
        return None
    problem = secret_weakness(value, min_length=min_length)
    if problem:
        raise EnvError(f"{name} is not acceptable: {problem}.")
    return value


def secret_weakness(value: str, *, min_length: int) -> str | None:
    """Why ``value`` is too weak to be a secret, or None when it will do."""
    if value.strip().lower() in KNOWN_PLACEHOLDERS:
        return "it is a well-known placeholder value"
    if len(set(value)) == 1:
        return "it is one character repeated"
    if len(value) < min_length:
        return f"it is shorter than {min_length} characters"
    return None
