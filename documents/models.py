"""Models of the document lifecycle."""

from __future__ import annotations
