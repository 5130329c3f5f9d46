"""One probe per dependency, each returning the one result type (``ops.probes.result``).

The views over them decide what an answer means to their audience:

- ``ops.health``: the readiness probe and /api/health, the probes run side by side within
  a deadline; the /status page reads the same answers.
- ``ops.checks``: the production checklist (``productioncheck``, ``check --deploy``),
  which asks the probes ``thorough=True`` and judges a dependency that is not configured.
- ``ops.metrics``: workers online, queue lengths and the backup's age, from these modules.

A probe returns FAIL for the failures it understands (a service that refuses or does not
answer) and lets anything else raise: each view turns that into a FAIL of its own item.
Modules here are imported on use, not from this package, so that a web process loads
the Meilisearch or Celery client only when it asks.
"""
