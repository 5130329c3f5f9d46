"""What a file really is (by content, not by its name) and what it may be called."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from pathlib import PurePosixPath

import magic


class FileKind(StrEnum):
    """How the convert step treats a file."""

    PDF = "pdf"
    IMAGE = "image"
    OFFICE = "office"  # anything LibreOffice (or Gotenberg) turns into PDF
    MAIL = "mail"  # an e-mail, rendered to one HTML page and then converted like an office file
    EMPTY = "empty"  # accepted so it fails visibly as a document, with its reason


_KIND_BY_MIME: dict[str, FileKind] = {
    "application/pdf": FileKind.PDF,
    "image/png": FileKind.IMAGE,
    "image/jpeg": FileKind.IMAGE,
    "image/tiff": FileKind.IMAGE,
    "image/webp": FileKind.IMAGE,
    "image/gif": FileKind.IMAGE,
    "image/bmp": FileKind.IMAGE,
    "image/heic": FileKind.IMAGE,
    "image/heif": FileKind.IMAGE,
    "application/msword": FileKind.OFFICE,
    "application/vnd.ms-excel": FileKind.OFFICE,
    "application/vnd.ms-powerpoint": FileKind.OFFICE,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": FileKind.OFFICE,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": FileKind.OFFICE,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": FileKind.OFFICE,
    "application/vnd.oasis.opendocument.text": FileKind.OFFICE,
    "application/vnd.oasis.opendocument.spreadsheet": FileKind.OFFICE,
    "application/vnd.oasis.opendocument.presentation": FileKind.OFFICE,
    "application/rtf": FileKind.OFFICE,
    "text/rtf": FileKind.OFFICE,
    "text/plain": FileKind.OFFICE,
    "text/markdown": FileKind.OFFICE,
    "text/html": FileKind.OFFICE,
    "text/csv": FileKind.OFFICE,
    "message/rfc822": FileKind.MAIL,
    "application/x-empty": FileKind.EMPTY,
}

# Office formats are zip containers that libmagic cannot always tell apart from a plain zip
# in the first bytes; only then does the extension decide which one it is.
_ZIP_OFFICE_BY_EXTENSION = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
}
_ZIP_MIMES = {"application/zip", "application/x-zip-compressed", "application/octet-stream"}

# libmagic says message/rfc822 only when a mail starts with one of a few headers it knows
# (From, Received, Return-Path ...); a mail saved with X-headers or Subject first is
# "text/plain" to it, and one with 8-bit bytes in odd places "application/octet-stream".
MAIL_MIME = "message/rfc822"
_MAIL_EXTENSIONS = {".eml"}
_MAIL_LOOKALIKE_MIMES = {"text/plain", "application/octet-stream"}
# Headers only a mail has near its top; two of them in an unbroken header block make a
# text file a mail even without the .eml name.
_MAIL_HEADERS = frozenset(
    {"from", "to", "cc", "subject", "date", "message-id", "received", "return-path",
     "mime-version", "delivered-to", "reply-to", "in-reply-to", "references"}
)  # fmt: skip
_HEADER_LINE = re.compile(rb"^([!-9;-~]+)[ \t]*:")
_HEADER_SNIFF_LINES = 100


def sniff_mime(head: bytes, filename: str) -> str:
    """The MIME type of a file from its first bytes (libmagic), refined by name where needed."""
    mime = magic.from_buffer(head, mime=True) if head else "application/x-empty"
    extension = PurePosixPath(filename.lower()).suffix
    if mime in _ZIP_MIMES and extension in _ZIP_OFFICE_BY_EXTENSION:
        return _ZIP_OFFICE_BY_EXTENSION[extension]
    if mime in _MAIL_LOOKALIKE_MIMES and extension in _MAIL_EXTENSIONS:
        # Taken as a mail even when it hardly looks like one: the converter then shows what
        # it can read or fails the document with the reason, and the original stays.
        return MAIL_MIME
    if mime == "text/plain" and _starts_with_mail_headers(head):
        return MAIL_MIME
    if mime == "text/plain" and extension in {".md", ".markdown"}:
        return "text/markdown"
    return mime


def _starts_with_mail_headers(head: bytes) -> bool:
    """Whether ``head`` opens with a block of header lines holding two typical mail headers."""
    known: set[bytes] = set()
    for number, line in enumerate(head.splitlines()):
        if not line.strip():
            return number > 0 and len(known) >= 2  # the blank line that ends the headers
        if number >= _HEADER_SNIFF_LINES:
            break
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the header above
        match = _HEADER_LINE.match(line)
        if match is None:
            return False
        name = match.group(1).lower()
        if name.decode("ascii") in _MAIL_HEADERS:
            known.add(name)
    return len(known) >= 2


def kind_of(mime: str) -> FileKind | None:
    """How a MIME type is processed, or None when it is not supported."""
    return _KIND_BY_MIME.get(mime)


SUPPORTED_MIME_TYPES = tuple(_KIND_BY_MIME)

_UNSAFE_CHARACTERS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
MAX_FILENAME_LENGTH = 200


def sanitize_filename(name: str, *, fallback: str = "document") -> str:
    """A display and download name that is safe anywhere.

    Takes the last path component of whatever a browser, mail or script sent (so
    ``../../etc/passwd`` becomes ``passwd``), drops control and reserved characters and
    leading dots, and shortens long names while keeping the extension.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE_CHARACTERS.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if not name or set(name) <= {"_", "."}:
        return fallback
    if len(name) > MAX_FILENAME_LENGTH:
        path = PurePosixPath(name)
        suffix = path.suffix if len(path.suffix) <= 10 else ""
        name = path.stem[: MAX_FILENAME_LENGTH - len(suffix)].rstrip(" .") + suffix
    return name


def storage_stem(text: str, *, max_length: int = 120) -> str:
    """An ASCII name for a stored file (``2024-03-12_Invoice_RE-4711``), safe on any storage."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9.-]+", "_", ascii_text)
    stem = re.sub(r"_{2,}", "_", stem).strip("._-")[:max_length].rstrip("._-")
    return stem or "document"
