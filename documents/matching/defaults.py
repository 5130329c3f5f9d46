"""Defaults for matching that learns, from the figures of bench/matching.py (see there)."""

from __future__ import annotations

# Placeholder until the bench has run.
MATCHING_MIN_DOCUMENTS = 25
MATCHING_CONFIDENCE_THRESHOLD = 0.6
MATCHING_MIN_TAG_DOCUMENTS = 3
MATCHING_TAG_SUGGESTION_FLOOR = 0.3
