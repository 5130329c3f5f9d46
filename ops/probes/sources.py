"""The sources probe: are the mailboxes and watched folders being read?

It reads what the last poll of each source recorded (``sources.polling``), never a server:
a health answer must not wait on a slow mail server, and beat polls every source anyway.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError

from ops.probes.result import CheckResult, error_text, not_configured, passed, unreachable, warned
from sources.selectors import source_health_counts, sources_failing

logger = logging.getLogger(__name__)

# Failing sources the operator's reason names; the rest are counted.
NAMED_IN_REASON = 10
FIX = (
    "open /status (or /sources) for each one's reason, correct its server, folder or password, "
    "then test it on /sources; each is polled again at its next turn"
)


def probe_sources() -> CheckResult:
    """The enabled sources by how their last poll went (``enabled``, ``failing``,
    ``never_polled``), and the failing system-wide ones (``failing_system_wide``: each
    one's name and its failure kind, such as ``configuration`` or ``temporary``).

    The facts go to every signed-in user (/api/health), so a user's own mailbox is
    counted, never named, and no error text is shown; the reason, for the operator, names
    them all with their owner and last error. NOT_CONFIGURED when no source is enabled.
    """
    try:
        counts = source_health_counts()
        if not counts["enabled"]:
            return not_configured("sources", "no source is enabled: documents come in only when sent")
        failing = list(sources_failing()[:NAMED_IN_REASON]) if counts["failing"] else []
        system_wide = [
            {"name": name, "reason": kind or "unknown"}
            for name, kind in sources_failing(system_wide_only=True).values_list("name", "last_error_kind")
        ]
    except DatabaseError as exc:
        reason = f"the sources cannot be read ({error_text(exc)})"
        logger.warning("sources probe: %s", reason)
        return unreachable("sources", reason, "check DATABASE_URL")
    facts = {**counts, "failing_system_wide": system_wide}
    if not failing:
        return passed("sources", f"{counts['enabled']} enabled, none failing", **facts)
    named = "; ".join(
        f"{source.name} ({source.owner.username if source.owner else 'system-wide'}, {source.kind}): "
        f"{source.last_error}"
        for source in failing
    )
    more = counts["failing"] - len(failing)
    return warned(
        "sources",
        f"{counts['failing']} of {counts['enabled']} enabled sources fail: {named}"
        + (f"; and {more} more" if more > 0 else ""),
        FIX,
        **facts,
    )
