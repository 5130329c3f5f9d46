"""The destinations probe: do the places documents are delivered to still work?

It asks no destination itself (that takes seconds per server, and writes a test file):
it reads the health that deliveries and the periodic credentials check recorded
(``destinations.health``). A failing destination is a WARN, never a FAIL: documents are
processed and kept all the same, and their deliveries go out once it is fixed.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError

from destinations.selectors import destination_health_counts, destinations_failing
from ops.probes.result import CheckResult, error_text, not_configured, passed, unreachable, warned

logger = logging.getLogger(__name__)

# Failing destinations the operator's reason names; the rest are counted.
NAMED_IN_REASON = 10
FIX = (
    "open /status (or the admin's destinations) for each one's reason, correct its settings or "
    "credentials, then test it on /destinations; the credentials check runs every 15 minutes"
)


def probe_destinations() -> CheckResult:
    """The enabled destinations by health (``enabled``, ``failing``, ``unchecked``), and the
    names of the failing system-wide ones (``failing_system_wide``).

    The facts go to every signed-in user (/api/health), so a user's own destination is
    counted, never named; the reason, for the operator, names them all with their owner.
    NOT_CONFIGURED when no destination is enabled.
    """
    try:
        counts = destination_health_counts()
        if not counts["enabled"]:
            return not_configured("destinations", "no destination is enabled: documents are kept here only")
        failing = list(destinations_failing()[:NAMED_IN_REASON]) if counts["failing"] else []
        system_wide = list(destinations_failing(system_wide_only=True).values_list("name", flat=True))
    except DatabaseError as exc:
        reason = f"the destinations cannot be read ({error_text(exc)})"
        logger.warning("destinations probe: %s", reason)
        return unreachable("destinations", reason, "check DATABASE_URL")
    facts = {**counts, "failing_system_wide": system_wide}
    if not failing:
        return passed("destinations", f"{counts['enabled']} enabled, none failing", **facts)
    named = "; ".join(
        f"{destination.name} ({destination.owner.username if destination.owner else 'system-wide'}, "
        f"{destination.kind}): {destination.health_error or destination.health_error_kind}"
        for destination in failing
    )
    more = counts["failing"] - len(failing)
    return warned(
        "destinations",
        f"{counts['failing']} of {counts['enabled']} enabled destinations fail: {named}"
        + (f"; and {more} more" if more > 0 else ""),
        FIX,
        **facts,
    )
