"""Signing in to Gmail and Microsoft 365 mailboxes with OAuth 2.0 (SASL XOAUTH2).

Neither provider takes a password from a program any more (Google's "less secure apps"
and Microsoft's basic authentication are gone): the mailbox's owner signs in once, in a
browser, and gives DocuElevate the refresh token it got. Each poll exchanges that refresh
token for an access token at the provider's token endpoint (RFC 6749 section 6) and signs
in to IMAP with it. An access token lasts about an hour and a poll comes every few minutes,
so one exchange per poll costs a request and keeps no token in memory between polls.

Microsoft hands out a new refresh token on every exchange and lets an old one expire 90
days after it was issued; the new one is handed back to be stored sealed with the source
(``destinations.kinds.oauth`` keeps the given and renewed forms, the same for both apps).

Requests go through ``destinations.kinds.transport.provider_session``: a timeout on each,
and the one seam where tests send a provider's origin to a local replay server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from sources.kinds.base import SourceMisconfigured, SourceTemporarilyFailed


class Auth:
    """How a mailbox signs in: ``auth`` in its settings, ``IMAP<n>_AUTH`` in the environment."""

    PASSWORD = "password"  # noqa: S105 - the name of a way to sign in, not a password
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    CHOICES = (PASSWORD, GOOGLE, MICROSOFT)
    OAUTH = (GOOGLE, MICROSOFT)


GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - an address, not a secret
MICROSOFT_LOGIN = "https://login.microsoftonline.com"
# Work, school and personal Microsoft accounts alike; a single-tenant app names its tenant.
MICROSOFT_DEFAULT_TENANT = "common"
# The scope of Office 365's IMAP, and offline_access so Microsoft keeps handing out refresh
# tokens. Google's refresh token already carries its scope (https://mail.google.com/).
MICROSOFT_IMAP_SCOPES = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
# Where each provider's IMAP service is when a mailbox does not name a server.
DEFAULT_HOSTS = {Auth.GOOGLE: "imap.gmail.com", Auth.MICROSOFT: "outlook.office365.com"}
PROVIDER_NAMES = {Auth.GOOGLE: "Google", Auth.MICROSOFT: "Microsoft"}

# What a token endpoint's error code (RFC 6749 section 5.2) asks the person to do.
_ERROR_ADVICE = {
    "invalid_grant": "the refresh token expired or was revoked; sign in again and store the new one",
    "invalid_client": "the app's client id or client secret is wrong",
    "unauthorized_client": "the app may not use refresh tokens; check its registration",
    "invalid_scope": "the app may not ask for IMAP access; add the scope to its registration",
    "invalid_request": "check the client id, the client secret and the tenant",
}


@dataclass(frozen=True)
class AccessGrant:
    """What one exchange of the refresh token gave."""

    access_token: str = field(repr=False)
    # A new refresh token, when the provider replaced the one used (Microsoft always does).
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MailApp:
    """The app registered with Google or Microsoft that the mailbox's owner allowed in."""

    provider: str  # Auth.GOOGLE or Auth.MICROSOFT
    client_id: str
    client_secret: str = field(default="", repr=False)  # none for a Microsoft public client
    tenant_id: str = MICROSOFT_DEFAULT_TENANT

    @property
    def provider_name(self) -> str:
        return PROVIDER_NAMES[self.provider]

    @property
    def token_url(self) -> str:
        if self.provider == Auth.GOOGLE:
            return GOOGLE_TOKEN_URL
        return f"{MICROSOFT_LOGIN}/{self.tenant_id}/oauth2/v2.0/token"

    def access_token_fetch(self, *, refresh_token: str, session: requests.Session) -> AccessGrant:
        """An access token for IMAP in exchange for ``refresh_token``.

        SourceMisconfigured when the provider refuses (the reason carries its error code,
        never a token or the client secret); SourceTemporarilyFailed when it is out of reach,
        busy or answers nonsense, so the next poll tries again.
        """
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.client_id}
        if self.client_secret:
            data["client_secret"] = self.client_secret
        if self.provider == Auth.MICROSOFT:
            data["scope"] = MICROSOFT_IMAP_SCOPES
        provider = self.provider_name
        try:
            response = session.post(self.token_url, data=data, headers={"Accept": "application/json"})
        except requests.RequestException as exc:  # refused, reset, timed out
            raise SourceTemporarilyFailed(
                f"{provider}'s sign-in service could not be reached ({exc.__class__.__name__})."
            ) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise SourceTemporarilyFailed(
                f"{provider}'s sign-in service is not answering for now (HTTP {response.status_code})."
            )
        answer = _json_object(response)
        if response.status_code != 200:
            # The code alone: it is what decides, and the provider's description may be long.
            code = str(answer.get("error") or f"HTTP {response.status_code}")[:80]
            advice = _ERROR_ADVICE.get(code, "check the app's registration")
            raise SourceMisconfigured(f"{provider} refused the mailbox's sign-in ({code}): {advice}.")
        access_token = answer.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise SourceTemporarilyFailed(f"{provider}'s sign-in service answered without an access token.")
        renewed = answer.get("refresh_token")
        rotated = renewed if isinstance(renewed, str) and renewed and renewed != refresh_token else None
        return AccessGrant(access_token=access_token, refresh_token=rotated)


def _json_object(response: requests.Response) -> dict[str, object]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
