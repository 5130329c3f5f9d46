"""What a mail holds for DocuElevate: who sent it, about what, and its attachments.

Mail is hostile input: names come RFC 2047/2231 encoded or not at all, charsets lie,
multiparts nest without end and a part may claim any type. Everything here is parsed with
the standard library's ``email`` (its default policy decodes the encodings), bounded in depth
and in count, and never trusted for a path: names go through ``sanitize_filename`` when the
document is made.
"""

from __future__ import annotations

import email
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from email.utils import parseaddr

from documents.filetypes import kind_of, sniff_mime

# Deeper nesting than any mail program writes is an attack on the parser's stack.
MAX_DEPTH = 20
MAX_PARTS = 5000


class AttachmentFilter:
    DOCUMENTS_ONLY = "documents_only"  # files of a type DocuElevate processes, not inline pictures
    ALL = "all"  # every attached file and inline picture; unsupported ones fail visibly

    CHOICES = (DOCUMENTS_ONLY, ALL)


@dataclass(frozen=True)
class Attachment:
    index: int  # position among the mail's parts, for the reference
    filename: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Mail:
    message_id: str  # the Message-ID header, or one made from the mail's bytes when it has none
    sender: str  # the address only, lower case
    subject: str
    attachments: list[Attachment] = field(default_factory=list)
    # Parts left out by the filter, by name, for the log.
    left_out: list[str] = field(default_factory=list)


def mail_read(raw: bytes, *, attachment_filter: str) -> Mail:
    """The facts and attachments of one RFC 5322 message."""
    message = email.message_from_bytes(raw, policy=default_policy)
    message_id = _header(message, "message-id").strip() or "sha256:" + hashlib.sha256(raw).hexdigest()
    sender = parseaddr(_header(message, "from"))[1].lower()
    attachments: list[Attachment] = []
    left_out: list[str] = []
    for index, part in enumerate(_leaves(message)):
        name = _filename(part)
        disposition = (part.get_content_disposition() or "").lower()
        is_file = disposition == "attachment" or bool(name) or part.get_content_type() == "message/rfc822"
        if not is_file:
            continue  # the mail's own text
        content = _payload(part)
        name = name or _default_name(part, index)
        if attachment_filter == AttachmentFilter.DOCUMENTS_ONLY and not _is_document(part, name, content):
            left_out.append(name)
            continue
        attachments.append(Attachment(index=index, filename=name, content=content))
    return Mail(
        message_id=message_id[:900],
        sender=sender,
        subject=_header(message, "subject"),
        attachments=attachments,
        left_out=left_out,
    )


def _leaves(message: Message) -> Iterator[Message]:
    """The parts that are not multiparts, depth first, bounded; an attached mail is one
    part (a document of its own), not opened."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            return
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            if depth < MAX_DEPTH:
                children = part.get_payload()
                if isinstance(children, list):
                    stack.extend((child, depth + 1) for child in reversed(children))
            continue
        if part is not message:
            yield part


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header the parser chokes on
        return ""
    return " ".join(str(value or "").split())[:998]


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except (ValueError, IndexError, TypeError, LookupError):
        return ""
    return " ".join(str(name).split())


def _payload(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner:
            inner = inner[0]
        if isinstance(inner, Message):
            return inner.as_bytes(policy=default_policy)
    try:
        content = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError):
        return b""
    return content if isinstance(content, bytes) else b""


def _default_name(part: Message, index: int) -> str:
    if part.get_content_type() == "message/rfc822":
        return f"attached-mail-{index}.eml"
    if part.get_content_type() == "text/calendar":
        return f"invitation-{index}.ics"
    return f"attachment-{index}"


def _is_document(part: Message, name: str, content: bytes) -> bool:
    """Whether a part is a document someone sent, rather than a logo in a signature."""
    if (part.get_content_disposition() or "").lower() == "inline" and part.get_content_maintype() == "image":
        return False
    if isinstance(part, EmailMessage) and part.get("content-id") and part.get_content_maintype() == "image":
        return False  # pictures the HTML body shows
    return kind_of(sniff_mime(content[:8192], name)) is not None
