"""Checks the settings of several kinds share: the server's address (host name and port),
switches, and the refusal of settings a kind does not have.

Run when a destination is saved, so a typo is refused with the reason there and then
rather than found by the first delivery. Each raises ``InvalidInput`` naming the setting,
never quoting a secret.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from docuelevate.addresses import public_host_check
from docuelevate.errors import InvalidInput

# One DNS label: letters, digits and hyphens, not at either end (underscores, which some
# internal names carry, are let through).
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def unknown_refuse(given: Mapping[str, Any], known: Iterable[str], *, what: str) -> None:
    """Refuse settings or secrets ``what`` destinations do not have (a typo would be lost)."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidInput(f"{what} destinations have no setting {', '.join(unknown)}.")


def host_clean(value: Any, *, what: str) -> str:
    """A host name or IP address (international names in IDNA); InvalidInput for anything
    else, a URL included."""
    host = str(value or "").strip()
    if not host:
        raise InvalidInput(f"The {what} server's host name is missing.")
    if "://" in host or "/" in host or "@" in host:
        raise InvalidInput(
            f"Give the {what} server's host name alone (such as files.example.org), without "
            "a scheme, user or path."
        )
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii").rstrip(".")
    except UnicodeError:
        raise InvalidInput(f"The {what} server's host name {host!r} is not a host name.") from None
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_host.split(".")):
        raise InvalidInput(f"The {what} server's host name {host!r} is not a host name.")
    return ascii_host


def port_clean(value: Any, *, default: int, what: str) -> int:
    """A TCP port, ``default`` when none is given."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidInput(f"The {what} port must be a number from 1 to 65535.")
    try:
        port = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"The {what} port must be a number from 1 to 65535.") from None
    if not 1 <= port <= 65535:
        raise InvalidInput(f"The {what} port must be a number from 1 to 65535.")
    return port


def server_clean(
    settings: Mapping[str, Any],
    secrets: Mapping[str, Any],
    *,
    setting_names: Iterable[str],
    secret_names: Iterable[str],
    default_port: int,
    what: str,
    system_wide: bool,
) -> tuple[str, int]:
    """The first checks of a kind that signs in to one server: no unknown setting or
    secret, then its host and port; a user's own server must be at a public address."""
    unknown_refuse(settings, setting_names, what=what)
    unknown_refuse(secrets, secret_names, what=what)
    host = host_clean(settings.get("host"), what=what)
    port = port_clean(settings.get("port"), default=default_port, what=what)
    if not system_wide:
        public_host_check(host, port=port, what=f"The {what} server")
    return host, port


def flag_clean(value: Any, *, default: bool, name: str) -> bool:
    """A switch: true or false (JSON booleans), ``default`` when not given."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(f"The setting {name} must be true or false.")
    return value


def text_clean(value: Any, *, name: str, required: bool = False) -> str:
    """A one-line text setting (a user name): no line breaks or control characters, which
    would end a protocol command early."""
    text = str(value or "").strip()
    if required and not text:
        raise InvalidInput(f"The setting {name} is required.")
    if any(ord(character) < 32 or ord(character) == 127 for character in text):
        raise InvalidInput(f"The setting {name} contains a line break or a control character.")
    return text
