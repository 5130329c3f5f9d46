"""OAuth 2.0 for the cloud-drive kinds: connecting an account, and keeping its refresh token.

Connecting (the connect pages, ``destinations/pages/oauth.py``) is the authorization-code
flow with PKCE (RFC 6749, RFC 7636), which Dropbox, Google and Microsoft speak alike; one
small client does it for the three (``OAuthApp``), each kind naming its endpoints and
scopes (``OAuthKind.oauth_app``). Using the refresh token afterwards, and refreshing the
access token on use, is each SDK's own business.

A destination's refresh token is kept in its sealed secrets in two forms:

- ``refresh_token``: as given, by the environment (``<KIND>_REFRESH_TOKEN``) or the API;
- ``renewed_refresh_token`` with ``renewed_from``: a newer one, from a connect page or
  handed out by the provider in exchange for the old (Microsoft replaces its refresh
  tokens on every use, and an old one expires 90 days after it was issued), and the
  SHA-256 of the given token it supersedes.

The newer one counts while the given one is unchanged; another given token (a changed
variable, an edit) counts instead. So the environment's destination keeps a connected or
replaced token across restarts without anyone rewriting the environment, and a changed
variable still wins.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

import requests

from destinations.kinds.base import DeliveryTemporarilyFailed, DestinationMisconfigured, Kind
from destinations.kinds.fields import unknown_refuse
from docuelevate.errors import InvalidInput

TOKEN_SECRET_NAMES = ("refresh_token", "renewed_refresh_token", "renewed_from")
RENEWED_SECRET_NAMES = ("renewed_refresh_token", "renewed_from")
_MAX_TOKEN_LENGTH = 4096

# What a token endpoint's error code (RFC 6749 section 5.2) asks the person to do.
_ERROR_ADVICE = {
    "invalid_grant": "the sign-in expired or was used already; connect again",
    "invalid_client": "the app's client id or secret is wrong",
    "unauthorized_client": "the app may not use this sign-in; check its registration",
    "redirect_uri_mismatch": "register the redirect URI shown in docs/destinations.md with the app",
    "invalid_request": "check the app's registration and its redirect URI",
    "invalid_scope": "the app may not ask for the access DocuElevate needs",
}


def token_fingerprint(token: str) -> str:
    """What ``renewed_from`` holds: the SHA-256 of a refresh token, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_secrets_clean(secrets: Mapping[str, Any]) -> dict[str, str]:
    """The refresh-token secrets, trimmed: the renewed token only while it was renewed
    from the given one. InvalidInput for a value that cannot be a token."""
    clean: dict[str, str] = {}
    for name in TOKEN_SECRET_NAMES:
        value = secrets.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > _MAX_TOKEN_LENGTH or not value.strip().isprintable():
            raise InvalidInput(f"The {name.replace('_', ' ')} is not a token.")
        clean[name] = value.strip()
    if "renewed_refresh_token" not in clean or clean.get("renewed_from") != token_fingerprint(
        clean.get("refresh_token", "")
    ):
        clean.pop("renewed_refresh_token", None)
        clean.pop("renewed_from", None)
    return clean


def refresh_token_in_use(secrets: Mapping[str, Any]) -> str:
    """The refresh token a destination signs in with: the renewed one while it counts."""
    clean = token_secrets_clean(secrets)
    return clean.get("renewed_refresh_token") or clean.get("refresh_token", "")


def token_secrets_renewed(secrets: Mapping[str, Any], token: str) -> dict[str, str]:
    """The secrets to store when ``token`` supersedes the destination's refresh token."""
    return {
        "renewed_refresh_token": token,
        "renewed_from": token_fingerprint(str(secrets.get("refresh_token") or "").strip()),
    }


def new_code_verifier() -> str:
    """A fresh PKCE code verifier (RFC 7636 section 4.1): 86 characters of 64 random bytes."""
    return secrets.token_urlsafe(64)


def pkce_challenge(verifier: str) -> str:
    """The S256 challenge of a PKCE code verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class OAuthApp:
    """DocuElevate's registration with one provider, for connecting an account to it.

    ``session`` speaks to the provider (``destinations.kinds.transport``). Errors are the
    kinds' own: a refusal is DestinationMisconfigured, a provider out of reach or busy
    DeliveryTemporarilyFailed; their messages carry the provider's error code, never a
    token or the client secret.
    """

    provider: str  # for people: "Dropbox"
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scopes: tuple[str, ...] = ()
    # What each provider needs to hand out a refresh token at all (offline access).
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def authorization_url(self, *, state: str, code_verifier: str) -> str:
        """Where to send the person to sign in and allow DocuElevate in."""
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "state": state,
            "code_challenge": pkce_challenge(code_verifier),
            "code_challenge_method": "S256",
            **({"scope": " ".join(self.scopes)} if self.scopes else {}),
            **self.authorize_params,
        }
        return f"{self.authorize_url}?{urlencode(params)}"

    def exchange(self, *, code: str, code_verifier: str) -> str:
        """The refresh token the provider gives for the authorization ``code``."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "code_verifier": code_verifier,
        }
        try:
            response = self.session.post(self.token_url, data=data, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise DeliveryTemporarilyFailed(
                f"{self.provider} could not be reached to finish the sign-in ({exc.__class__.__name__})."
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryTemporarilyFailed(
                f"{self.provider} could not finish the sign-in for now (HTTP {response.status_code}); "
                "try again."
            )
        if response.status_code != 200:
            code_name = str(answer.get("error") or f"HTTP {response.status_code}")[:80]
            advice = _ERROR_ADVICE.get(code_name, "check the app's registration")
            raise DestinationMisconfigured(f"{self.provider} refused the sign-in ({code_name}): {advice}.")
        token = answer.get("refresh_token")
        if not isinstance(token, str) or not token:
            raise DestinationMisconfigured(
                f"{self.provider} allowed the sign-in but gave no refresh token, so DocuElevate could "
                "not deliver later; check that the app asks for offline access."
            )
        return token


class OAuthKind(Kind):
    """A kind whose destinations sign in with an OAuth refresh token, obtained on the
    connect pages; the given and renewed forms are ``TOKEN_SECRET_NAMES``."""

    provider: ClassVar[str]  # for people: "Dropbox", "Google Drive", "OneDrive"
    carried_secret_names = RENEWED_SECRET_NAMES

    @classmethod
    @abstractmethod
    def oauth_app(cls, *, redirect_uri: str, session: requests.Session | None = None) -> OAuthApp:
        """DocuElevate's app with the provider, from the settings; DestinationMisconfigured
        when its credentials are not configured."""

    @classmethod
    def clean(
        cls, settings: Mapping[str, Any], secrets: Mapping[str, Any], *, system_wide: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A folder and the token secrets; no refresh token yet is fine: the destination is
        connected on the destinations page. Kinds with more settings override it."""
        unknown_refuse(settings, cls.setting_names, what=cls.provider)
        unknown_refuse(secrets, cls.secret_names, what=cls.provider)
        folder = str(settings.get("folder") or "").strip().strip("/")
        return {"folder": folder}, token_secrets_clean(secrets)

    @classmethod
    def signs_in_with_oauth(cls, settings: Mapping[str, Any]) -> bool:
        """Whether a destination with these settings is connected through OAuth (a Google
        Drive destination may sign in with a service account's key instead)."""
        return True

    @classmethod
    def connected_secrets(cls, secrets: Mapping[str, Any], refresh_token: str) -> dict[str, str]:
        """The secrets to store once a connect page obtained ``refresh_token``."""
        return token_secrets_renewed(secrets, refresh_token)

    def _renewed(self, given: str, token: str) -> None:
        """Hand on a refresh token the provider issued in place of the one in use."""
        if self.on_secrets_renewed is not None:
            self.on_secrets_renewed(token_secrets_renewed({"refresh_token": given}, token))
