"""Metadata extraction: the configured extractor (``AI_PROVIDER``)."""

from __future__ import annotations

from django.conf import settings

from documents.metadata.base import MetadataExtractor


def configured_extractor() -> MetadataExtractor:
    """The rules extractor, or an OpenAI-compatible API with the rules filling its gaps."""
    from documents.metadata.rules import RulesExtractor

    rules = RulesExtractor()
    if settings.AI_PROVIDER == "openai":
        from documents.integrations.openai_chat import OpenAIChatClient
        from documents.metadata.openai import OpenAIExtractor

        return OpenAIExtractor(client=OpenAIChatClient.from_settings(), fallback=rules)
    return rules
