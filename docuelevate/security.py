"""Security plumbing that belongs to no single app: response headers Django has no setting
for, the CSP violation report endpoint, and keeping secrets out of logs and error pages."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

csp_logger = logging.getLogger("docuelevate.csp")

MASK = "********"
# Settings whose values are secrets (SECRET_KEY and its fallbacks are added by hand).
SECRET_SETTINGS = (
    "ADMIN_PASSWORD",
    "OIDC_RP_CLIENT_SECRET",
    "MEILISEARCH_API_KEY",
    "EMAIL_HOST_PASSWORD",
    "METRICS_TOKEN",
    "OPENAI_API_KEY",
    "AZURE_DOCUMENT_INTELLIGENCE_KEY",
    "AWS_SECRET_ACCESS_KEY",  # the S3 destination's (and the S3 document storage's)
    "WEBDAV_PASSWORD",
    "NEXTCLOUD_PASSWORD",
    "DEST_EMAIL_PASSWORD",
    "UPTIME_KUMA_URL",  # the push token is part of the URL
)
# Shorter values are too likely to occur in ordinary text to be replaced wherever they appear.
MIN_MASKED_LENGTH = 6
# The password in scheme://user:password@host, and secret-looking query parameters.
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)", re.IGNORECASE)
SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&](?:token|key|api_key|apikey|password|secret|access_token)=)[^&\s#]+", re.IGNORECASE
)
# Uptime Kuma's push URLs carry their token as the last path segment.
PUSH_TOKEN = re.compile(r"(?P<head>/api/push/)[^/?\s#]+")


def secret_values() -> list[str]:
    """The configured secrets, longest first (so a secret containing another is masked whole)."""
    values: list[Any] = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    values += [getattr(settings, name, None) for name in SECRET_SETTINGS]
    # Nested ones: the S3 key of the documents storage, the social login apps' secrets.
    values.append(settings.STORAGES.get("documents", {}).get("OPTIONS", {}).get("secret_key"))
    for provider in getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}).values():
        values += [app.get("secret") for app in provider.get("APPS", [])]
    found = {value for value in values if isinstance(value, str) and len(value) >= MIN_MASKED_LENGTH}
    return sorted(found, key=len, reverse=True)


def mask_secrets(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every configured secret, URL password and secret parameter replaced."""
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, MASK)
    for pattern in (URL_PASSWORD, SECRET_PARAMETER, PUSH_TOKEN):
        text = pattern.sub(lambda match: match.group("head") + MASK, text)
    return text


class SecretMaskingFilter(logging.Filter):
    """Masks secrets in every record a handler writes: the message with its arguments, and
    the traceback (an exception's text may quote a URL with its password)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values()
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # arguments that do not fit the message: logging reports that itself
        masked = mask_secrets(message, secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, secrets)
        return True


class SecretMaskingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's error report hides settings named like secrets; this also hides the
    passwords inside URLs (DATABASE_URL, REDIS_URL, the broker) and configured secrets
    wherever they show up."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        return mask_secrets(cleansed) if isinstance(cleansed, str) else cleansed


class PermissionsPolicyMiddleware:
    """Sends PERMISSIONS_POLICY with every response (Django has no setting for it)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


# A report is a few hundred bytes; anything much larger is not one.
MAX_CSP_REPORT_BYTES = 64 * 1024
REPORT_FIELDS = ("document-uri", "violated-directive", "effective-directive", "blocked-uri", "source-file")


@csrf_exempt
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """Browsers post here what the Content-Security-Policy blocked; each violation becomes
    one warning in the log, where an operator sees an attack or a page we broke.

    Accepts both formats browsers send: ``application/csp-report`` (``{"csp-report": {…}}``)
    and the Reporting API's ``application/reports+json`` (a list of ``{"type", "body"}``).
    Always 204: a browser does nothing with the answer, and a malformed report is noise.
    """
    if len(request.body) > MAX_CSP_REPORT_BYTES:
        return HttpResponse(status=413)
    for violation in _violations(request.body):
        fields = {name: str(violation.get(name, ""))[:500] for name in REPORT_FIELDS}
        csp_logger.warning(
            "CSP violation: %s blocked %s on %s",
            fields["effective-directive"] or fields["violated-directive"],
            fields["blocked-uri"] or "(inline)",
            fields["document-uri"],
            extra={"csp": fields},
        )
    return HttpResponse(status=204)


def _violations(body: bytes) -> list[dict[str, Any]]:
    try:
        report = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if isinstance(report, dict) and isinstance(report.get("csp-report"), dict):
        return [report["csp-report"]]
    if isinstance(report, list):
        # The Reporting API names the fields in camelCase.
        reports = [item for item in report if isinstance(item, dict) and item.get("type") == "csp-violation"]
        bodies = [item["body"] for item in reports if isinstance(item.get("body"), dict)]
        return [{_kebab(key): value for key, value in body.items()} for body in bodies]
    return []


def _kebab(name: str) -> str:
    """``blockedURL`` -> ``blocked-uri``, ``documentURL`` -> ``document-uri``, ``effectiveDirective`` -> …"""
    name = name.replace("URL", "Uri")
    return re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()
