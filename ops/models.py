"""Models of operations."""

from __future__ import annotations
