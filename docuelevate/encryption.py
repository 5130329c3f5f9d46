"""Secrets at rest: credentials the database keeps (destinations, later mailboxes) are sealed.

One mechanism for every app: ``seal``/``unseal`` turn a JSON value into a Fernet token and
back, and ``EncryptedJSONField`` stores a model's secrets that way. The keys come from
``SESSION_SECRET`` (Django's ``SECRET_KEY``) through HKDF, never the secret itself, so a
token is useless to whoever holds the secret for another purpose (Django's signing uses the
raw value). ``SESSION_SECRET_PREVIOUS`` (``SECRET_KEY_FALLBACKS``) still opens what it
sealed, so a rotation goes: set the new secret, move the old one to the previous, run
``manage.py rotate_secrets`` (which re-seals every stored token under the new one), then
drop the previous.

A decrypted value is a ``SecretValues``: a read-only mapping whose ``repr`` and ``str``
name only its keys, so a secret cannot reach a log line, an error page or the admin by
being printed.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models
from django.db.models.query_utils import DeferredAttribute

# HKDF's context: a key derived for secrets at rest is no key for anything else.
_KDF_SALT = b"docuelevate"
_KDF_INFO = b"docuelevate secrets at rest v1"


class SecretsUnreadable(Exception):
    """A stored token opens with neither SESSION_SECRET nor SESSION_SECRET_PREVIOUS.

    The message names no value: the credentials must be entered again (or the secret that
    sealed them put back as SESSION_SECRET_PREVIOUS).
    """

    def __init__(self) -> None:
        super().__init__(
            "Stored credentials cannot be decrypted with SESSION_SECRET or SESSION_SECRET_PREVIOUS; "
            "enter them again, or set the secret they were saved under as SESSION_SECRET_PREVIOUS."
        )


def derive_key(secret: str) -> bytes:
    """The Fernet key (urlsafe base64 of 32 bytes) that ``secret`` gives, through HKDF-SHA256."""
    return base64.urlsafe_b64encode(derive_purpose_key(secret, info=_KDF_INFO))


def derive_purpose_key(secret: str, *, info: bytes) -> bytes:
    """32 raw bytes derived from ``secret`` through HKDF-SHA256 for the one purpose ``info`` names.

    Each use of the secret (sealing, signing stored models, ...) has its own ``info``, so a
    key that leaks from one use is no key for another.
    """
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_KDF_SALT, info=info).derive(secret.encode())


def purpose_keys(*, info: bytes) -> tuple[bytes, ...]:
    """The ``info`` key of SESSION_SECRET first, then of each SESSION_SECRET_PREVIOUS.

    Write with the first; accept any, so a rotation does not orphan what the old secret made.
    """
    return _purpose_keys(_current_secrets(), info)


@functools.lru_cache(maxsize=8)
def _purpose_keys(secrets: tuple[str, ...], info: bytes) -> tuple[bytes, ...]:
    return tuple(derive_purpose_key(secret, info=info) for secret in secrets)


@functools.lru_cache(maxsize=8)
def _fernets(secrets: tuple[str, ...]) -> tuple[Fernet, MultiFernet]:
    keys = [Fernet(derive_key(secret)) for secret in secrets]
    return keys[0], MultiFernet(keys)


def _current_secrets() -> tuple[str, ...]:
    # Read on each call (cached by value): tests and rotations change the settings.
    return (settings.SECRET_KEY, *[key for key in settings.SECRET_KEY_FALLBACKS if key])


def seal(value: Any) -> str:
    """``value`` (anything JSON can hold) as a token only SESSION_SECRET(_PREVIOUS) opens."""
    current, _ = _fernets(_current_secrets())
    return current.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode("ascii")


def unseal(token: str) -> Any:
    """The value sealed in ``token``; SecretsUnreadable when no configured secret opens it."""
    _, every = _fernets(_current_secrets())
    try:
        return json.loads(every.decrypt(token.encode("ascii")))
    except (InvalidToken, UnicodeEncodeError, ValueError):
        raise SecretsUnreadable() from None


def reseal(token: str) -> str | None:
    """``token`` sealed again under the current secret; None when it already is.

    SecretsUnreadable when no configured secret opens it. Checking first keeps a rotation
    idempotent: a second run finds nothing left to do and says so.
    """
    current, every = _fernets(_current_secrets())
    try:
        current.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        pass
    else:
        return None
    try:
        return every.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError):
        raise SecretsUnreadable() from None


class SecretValues(Mapping[str, Any]):
    """Decrypted secrets, read-only; printed as their names only (``<SecretValues: password>``).

    Loaded from the database it holds the token and decrypts on first use, so a list of
    destinations shows even when a secret was lost, and saving an unchanged row stores the
    same token. New secrets are a new ``SecretValues`` (or a dict assigned to the field).
    """

    def __init__(self, values: Mapping[str, Any] | None = None, *, token: str | None = None) -> None:
        self._values: dict[str, Any] | None = dict(values) if values is not None else None
        self._token = token
        if values is None and token is None:
            self._values = {}

    @property
    def token(self) -> str | None:
        """The stored form, when these values came from the database unchanged."""
        return self._token

    def reveal(self) -> dict[str, Any]:
        """A plain copy of the values, for the one place that must use them."""
        return dict(self._load())

    def _load(self) -> dict[str, Any]:
        if self._values is None:
            assert self._token is not None
            values = unseal(self._token)
            if not isinstance(values, dict):
                raise SecretsUnreadable()
            self._values = values
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (a cache, a deep copy) in the sealed form only, never as plain values.
        if self._token is not None or not self._values:
            return {"_token": self._token, "_values": None if self._token else {}}
        return {"_token": seal(self._values), "_values": None}

    def __repr__(self) -> str:
        try:
            names = ", ".join(sorted(self._load())) or "none"
        except SecretsUnreadable:
            names = "unreadable"
        return f"<SecretValues: {names}>"

    __str__ = __repr__


class _SecretValuesAttribute(DeferredAttribute):
    """Whatever is assigned (a dict, a token, None) is held as SecretValues at once, so
    a model instance never carries its secrets in a printable form."""

    def __set__(self, instance: models.Model, value: Any) -> None:
        instance.__dict__[self.field.attname] = EncryptedJSONField.wrap(value)


class EncryptedJSONField(models.TextField[Mapping[str, Any] | str | None, SecretValues]):
    """A JSON object of secrets, stored sealed (``seal``); empty stores as "".

    Left out of forms and the admin (``editable=False``): secrets are written through the
    app's services, never shown back. ``manage.py rotate_secrets`` finds every field of
    this type in every model and re-seals it.
    """

    descriptor_class = _SecretValuesAttribute
    description = "Secrets (JSON), encrypted at rest"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", dict)
        super().__init__(*args, **kwargs)

    @staticmethod
    def wrap(value: Any) -> SecretValues:
        if isinstance(value, SecretValues):
            return value
        if value is None or value == "":
            return SecretValues()
        if isinstance(value, str):
            return SecretValues(token=value)
        if isinstance(value, Mapping):
            return SecretValues(value)
        raise TypeError(f"secrets must be a mapping, not {type(value).__name__}")

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> SecretValues:
        return self.wrap(value)

    def to_python(self, value: Any) -> SecretValues:
        return self.wrap(value)

    def get_prep_value(self, value: Any) -> str:
        secrets = self.wrap(value)
        if secrets.token is not None:
            return secrets.token
        values = secrets.reveal()
        return seal(values) if values else ""

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisation (dumpdata, backups) carries the token, never the plain values.
        return self.get_prep_value(self.value_from_object(obj))
