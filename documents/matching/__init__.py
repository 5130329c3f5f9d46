"""Matching that learns: per owner, classifiers that suggest a document's type, correspondent
and tags from what the owner filed and corrected before.

``matcher_train`` (classifier.py) learns from ``TrainingSample``s (samples.py), whose labels
are the names of the owner's list entries; ``TrainedMatcher.suggest`` answers with
``Suggestions``; storage.py turns a trained matcher into signed bytes and back. Nothing here
knows the database: the caller maps names to rows and keeps the bytes.
"""

from __future__ import annotations

from documents.matching.classifier import Suggestion, Suggestions, TrainedMatcher, matcher_train
from documents.matching.defaults import (
    MATCHING_CONFIDENCE_THRESHOLD,
    MATCHING_MIN_DOCUMENTS,
    MATCHING_MIN_TAG_DOCUMENTS,
    MATCHING_TAG_SUGGESTION_FLOOR,
)
from documents.matching.samples import TrainingSample

__all__ = [
    "MATCHING_CONFIDENCE_THRESHOLD",
    "MATCHING_MIN_DOCUMENTS",
    "MATCHING_MIN_TAG_DOCUMENTS",
    "MATCHING_TAG_SUGGESTION_FLOOR",
    "Suggestion",
    "Suggestions",
    "TrainedMatcher",
    "TrainingSample",
    "matcher_train",
]
