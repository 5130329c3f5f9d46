"""What matching learns from: one owner's document, as text and the labels the owner accepted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingSample:
    """One document of the owner: its text and the names of its list entries.

    Labels are names, not ids: the classifier neither knows nor keeps database rows, so a
    renamed or merged entry is mapped by the caller before training and after suggesting.
    None (or no tags) means the owner has not set that field; such a document still
    teaches the other fields.
    """

    text: str
    document_type: str | None = None
    correspondent: str | None = None
    tags: tuple[str, ...] = ()
