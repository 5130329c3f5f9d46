"""The text's language as an ISO 639-1 code."""

from __future__ import annotations

import functools
import importlib
import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

_SAMPLE_CHARS = 5_000
_SURE = 0.9
_LIKELY_ENOUGH = 0.5
_MIN_LIKELY_MASS = 0.25  # below it the text is most likely in none of them, or no language at all
# Where a short text leaves the model unsure, DocuElevate's documents are most likely in one of these.
_LIKELY_LANGUAGES = frozenset({
    "de", "en", "fr", "it", "es", "nl", "pl", "pt", "da", "sv", "no", "fi", "cs", "sk", "hu", "ro", "hr",
    "sl", "tr", "el", "ru", "uk",
})  # fmt: skip
_STOPWORDS = {
    "de": frozenset({
        "der", "die", "das", "und", "ist", "nicht", "mit", "für", "sie", "wir", "ihre", "ihr", "ihnen",
        "den", "dem", "des", "von", "zu", "auf", "bei", "eine", "ein", "einer", "im", "wird", "werden",
        "bitte", "sehr", "geehrte", "geehrter", "freundlichen", "grüßen", "vielen", "dank", "oder",
        "auch",
    }),
    "en": frozenset({
        "the", "and", "is", "not", "with", "for", "you", "we", "your", "our", "of", "to", "on", "at",
        "an", "please", "dear", "thank", "sincerely", "regards", "this", "that", "are", "be", "will",
        "from", "by", "has", "have",
    }),
}  # fmt: skip


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None when there are too few words to tell."""
    sample = text[:_SAMPLE_CHARS]
    words = re.findall(r"[^\W\d_]{2,}", sample.lower())
    if len(words) < 3:
        return None
    ranking = _model_ranking(sample)
    best = max(ranking, key=lambda lang: ranking[lang], default=None)
    if best and ranking[best] >= _SURE and len(best) == 2:  # "zxx" and ISO 639-3 codes don't fit
        return best
    by_stopwords = _stopword_language(words)
    if by_stopwords:
        return by_stopwords
    # Renormalising over the likely languages is what restricting the model to them would give.
    likely = {lang: p for lang, p in ranking.items() if lang in _LIKELY_LANGUAGES}
    total = sum(likely.values())
    best = max(likely, key=lambda lang: likely[lang], default=None)
    return best if best and total >= _MIN_LIKELY_MASS and likely[best] / total >= _LIKELY_ENOUGH else None


def _stopword_language(words: list[str]) -> str | None:
    # On terse receipts and forms the model guesses; a few German or English function words don't.
    counts = {lang: sum(word in stopwords for word in words) for lang, stopwords in _STOPWORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] >= 2 and counts[best] > 2 * min(counts.values()) else None


def _model_ranking(sample: str) -> dict[str, float]:
    identifier = _language_identifier()
    if identifier is None:
        return {}
    try:
        return {str(lang): float(p) for lang, p in identifier.rank(sample)}
    except Exception:  # an odd sample must not cost the other fields
        logger.debug("language identification failed", exc_info=True)
        return {}


@functools.cache
def _language_identifier() -> Any | None:
    # py3langid ships its model inside the package, so this works offline. It is optional, and
    # imported by name so that type checking passes where it is not installed.
    try:
        langid = importlib.import_module("py3langid.langid")
        return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    except Exception:  # a missing or broken package leaves the stopword count
        logger.info("py3langid is not available; detecting only German and English", exc_info=True)
        return None
