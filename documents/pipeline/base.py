"""The interface of a pipeline step and the errors steps raise.

A step is a small object with a ``name`` and ``run(context)``. It reads the document's
files through ``documents.storage``, does one job, stores its result and returns what it
wants recorded. The runner (``documents.pipeline.runner``) owns everything around it:
the ProcessingStep row, the log, the document's status, retries and the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from documents.models import Document, FailureKind


class StepFailed(Exception):
    """The document cannot go on; ``message`` says why, in words a user understands.

    Permanent: retrying would give the same answer (a broken or protected file, too many
    pages, an unsupported structure). ``kind`` is what the runner records beside the message.
    """

    kind: ClassVar[FailureKind] = FailureKind.PERMANENT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StepTemporarilyFailed(StepFailed):
    """A passing problem (a service down, a timeout talking to it); worth retrying later."""

    kind = FailureKind.TEMPORARY


class StepInputTooLarge(StepFailed):
    """The document is over a size limit (MAX_PAGES, MAX_IMAGE_PIXELS), found before any
    engine spent memory on it; it may go through once the limit is raised."""

    kind = FailureKind.TOO_LARGE


class StepInputMissing(StepFailed):
    """What the step works on is gone (swept scratch files); the pipeline must start over."""


@dataclass
class StepContext:
    """What a step gets: the document, a private scratch folder, and the run's options."""

    document: Document
    scratch: Path
    force_ocr: bool = False


@dataclass(frozen=True)
class StepResult:
    """What happened, for the log. ``skipped`` means there was nothing to do."""

    message: str
    skipped: bool = False


class Step(Protocol):
    """One stage of the pipeline."""

    name: ClassVar[str]

    def run(self, context: StepContext) -> StepResult: ...
