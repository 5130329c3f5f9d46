"""Probes of document conversion: Gotenberg, when used, and the converter's network sandbox.

Both ask whether an office document could make the converter reach the network: a
document is a hostile input (docs/security.md).
"""

from __future__ import annotations

from django.conf import settings

from documents.integrations.gotenberg import GotenbergClient, GotenbergError
from documents.pipeline.isolation import network_isolation
from ops.probes.result import CheckResult, error_text, failed, not_configured, passed, unreachable, warned


def probe_gotenberg(*, timeout: float | None = None) -> CheckResult:
    """Gotenberg, when used, must load nothing a document references (a canary tells)."""
    url = settings.GOTENBERG_URL
    if not url:
        return not_configured("gotenberg", "not used: office files are converted on the workers")
    client = GotenbergClient(base_url=url, timeout=timeout or settings.CONVERT_TIMEOUT)
    try:
        loads = client.loads_references()
    except (GotenbergError, OSError) as exc:
        # The HTTP library's own error says more to an operator (a name, a refusal, a timeout).
        cause = exc.__cause__ if isinstance(exc, GotenbergError) and exc.__cause__ else exc
        return unreachable(
            "gotenberg", f"Gotenberg at {url} does not answer ({error_text(cause)})", "check GOTENBERG_URL"
        )
    if loads:
        return failed(
            "gotenberg",
            "Gotenberg loaded what a test document referenced on this host, so it can reach the network",
            "put Gotenberg on a network without egress (docs/security.md)",
        )
    return passed("gotenberg", "Gotenberg loaded nothing a test document referenced on this host")


def probe_converter_sandbox() -> CheckResult:
    """Whether LibreOffice on this machine converts without network (documents/pipeline/isolation.py).

    Run on a worker (``docker compose exec worker ...``) to check the workers themselves.
    """
    if settings.CONVERTER_SANDBOX == "none":
        return warned(
            "converter_sandbox",
            "CONVERTER_SANDBOX=none: LibreOffice converts with this machine's network access",
            "set CONVERTER_SANDBOX=namespace, or be sure the workers have no egress (docs/security.md)",
        )
    isolation = network_isolation()
    if isolation.available:
        return passed("converter_sandbox", f"LibreOffice converts in {isolation.reason}")
    if settings.GOTENBERG_URL:
        return passed(
            "converter_sandbox", "office files go to Gotenberg; no network namespace can be made here"
        )
    return failed(
        "converter_sandbox",
        f"no network namespace can be made here, so office files are not converted ({isolation.reason})",
        "allow user namespaces for the worker (docs/security.md) or set GOTENBERG_URL",
    )
