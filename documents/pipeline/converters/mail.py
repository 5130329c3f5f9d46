"""E-mails (``message/rfc822``, ``.eml``) to PDF: one HTML page, converted as an office file.

The page holds the mail's header block (From, To, Cc, Date, Subject, RFC 2047 decoded), its
body (the HTML alternative when there is one, else the plain text), its inline images as
``data:`` URIs (``cid:`` references resolved; inline images nothing refers to follow the
body) and the names and sizes of its attachments. The office converter (LibreOffice without
network, or Gotenberg) makes the PDF, so a mail is as isolated as any other document, and
its text layer makes it searchable without OCR.

A mail is hostile input: headers are cut to a bounded length before anything parses them
(the standard library's header parser is quadratic or worse on very long ones), nesting and
the number of parts are bounded, the body HTML loses scripts, event handlers and every
reference that would load something, and text in a wrong or unknown charset is decoded
with replacement characters instead of failing the document.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import lxml.etree
import lxml.html
import magic

from documents.pipeline.base import StepFailed
from documents.pipeline.converters.references import strip_html_references

if TYPE_CHECKING:
    from documents.pipeline.converters import Converter

# The parser holds the whole mail in memory, several times over while decoding parts.
MAX_MAIL_BYTES = 64 * 1024**2
# Far beyond any real mail; what lies deeper or further is counted, not shown.
MAX_DEPTH = 20
MAX_PARTS = 2_500
# The parser spends about a millisecond on every part it meets, more on odd MIME headers,
# whether or not it is shown: lines that may open a part are counted before it starts.
MAX_PART_MARKERS = 5_000
# Header values are cut here before parsing. MIME headers steer the parser itself and
# stay short in real mail, so they get the tighter bound.
MAX_HEADER_CHARS = 8_000
MAX_MIME_HEADER_CHARS = 1_000
MIME_HEADERS = frozenset({"content-type", "content-disposition", "content-transfer-encoding", "content-id"})
MAX_BODY_CHARS = 2_000_000
MAX_INLINE_IMAGE_BYTES = 25 * 1024**2
MAX_SHOWN_NAME_CHARS = 200

DISPLAYED_HEADERS = ("From", "To", "Cc", "Date", "Subject")
# Without one of these the file is not a mail at all, whatever its name says.
IDENTIFYING_HEADERS = ("From", "To", "Cc", "Date", "Subject", "Message-ID", "Received")
# What the office converter renders from a data: URI; the bytes decide, not the label.
SHOWN_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/bmp"})
PAGE_STYLE = """
body { font-family: sans-serif; font-size: 10pt; }
table.mail-headers { border-collapse: collapse; margin-bottom: 12pt; }
table.mail-headers th { text-align: left; padding-right: 8pt; vertical-align: top; }
pre.mail-text { white-space: pre-wrap; font-family: monospace; font-size: 9pt; }
"""


class _BoundedPolicy(EmailPolicy):
    """``email.policy.default``, with every header value cut before anyone parses it."""

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        limit = MAX_MIME_HEADER_CHARS if name.lower() in MIME_HEADERS else MAX_HEADER_CHARS
        return name, value[:limit]


BOUNDED_POLICY = _BoundedPolicy()


@dataclass(frozen=True)
class Attachment:
    name: str
    size: int


@dataclass
class MailParts:
    """What the walk over a mail's MIME tree found, in the order it found it."""

    bodies: list[tuple[str, str]] = field(default_factory=list)  # (content type, text)
    images: list[Message] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    parts_seen: int = 0
    parts_left_out: int = 0


@dataclass(frozen=True)
class MailPage:
    """The rendered page, and what the processing log should say about it."""

    html: str
    notes: tuple[str, ...]


class MailConverter:
    """Renders the mail to HTML, then hands that page to the office converter."""

    def __init__(self, *, office: Converter) -> None:
        self.office = office
        self.name = f"the mail renderer and {office.name}"

    def to_pdf(self, *, source: Path, destination: Path, mime_type: str, scratch: Path) -> str:
        page = render_mail(source)
        folder = Path(tempfile.mkdtemp(prefix="mail-", dir=scratch))
        rendered = folder / "mail.html"
        rendered.write_text(page.html, encoding="utf-8")
        office_note = self.office.to_pdf(
            source=rendered, destination=destination, mime_type="text/html", scratch=scratch
        )
        return "; ".join(note for note in (*page.notes, office_note) if note)


def render_mail(source: Path) -> MailPage:
    """The one HTML page that shows the mail in ``source``; StepFailed when it is no mail."""
    size = source.stat().st_size
    if size > MAX_MAIL_BYTES:
        raise StepFailed(f"The mail is {size} bytes; one over {MAX_MAIL_BYTES // 1024**2} MiB is not shown.")
    if _part_markers(source) > MAX_PART_MARKERS:
        raise StepFailed(f"The mail has more than {MAX_PART_MARKERS} parts; it is not shown.")
    try:
        return _rendered(source)
    except RecursionError:
        # The parser descends recursively into nested multiparts, and a MIME header's parser
        # into nested comments; a mail nested hundreds deep is built to exhaust the stack.
        raise StepFailed("The mail is nested too deeply to be read.") from None


def _rendered(source: Path) -> MailPage:
    with source.open("rb") as handle:
        message = BytesParser(policy=BOUNDED_POLICY).parse(handle)
    if not any(_has_header(message, name) for name in IDENTIFYING_HEADERS):
        raise StepFailed("The file has no mail headers (From, To, Subject, Date); it is not a mail.")

    found = MailParts()
    _collect(message, depth=0, found=found)
    images = _InlineImages(found.images)
    body_html, removed = _bodies_html(found.bodies, images)
    unreferenced_images = images.unreferenced_html()
    notes: list[str] = []
    if removed:
        notes.append(f"{removed} active or external item(s) left out of the mail's HTML")
    if images.left_out:
        notes.append(f"{images.left_out} inline image(s) over the size budget or unreadable left out")
    if found.parts_left_out:
        notes.append(f"{found.parts_left_out} MIME part(s) nested too deeply or too many left out")
    page = "".join(
        [
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">',
            f"<style>{PAGE_STYLE}</style>",
            body_html.styles,
            "</head><body>",
            _header_table(message),
            body_html.content,
            unreferenced_images,
            _attachment_list(found.attachments),
            "</body></html>",
        ]
    )
    return MailPage(html=page, notes=tuple(notes))


# --- Walking the MIME tree ------------------------------------------------------------------


def _part_markers(source: Path) -> int:
    """Lines that may be a MIME boundary (``--`` first): at least one per part there is."""
    with source.open("rb") as handle:
        return sum(1 for line in handle if line.startswith(b"--"))


def _collect(part: Message, *, depth: int, found: MailParts) -> None:
    if found.parts_seen >= MAX_PARTS or depth > MAX_DEPTH:
        found.parts_left_out += 1
        return
    found.parts_seen += 1
    content_type = part.get_content_type()
    disposition = part.get_content_disposition()
    if part.get_content_maintype() == "message":
        # A forwarded or bounced mail: named in the list, not rendered into this one.
        found.attachments.append(Attachment(name=_attached_mail_name(part), size=_payload_size(part)))
        return
    if part.is_multipart():
        subparts = [sub for sub in part.get_payload() if isinstance(sub, Message)]
        if content_type == "multipart/alternative" and subparts:
            subparts = [_best_alternative(subparts)]
        for subpart in subparts:
            _collect(subpart, depth=depth + 1, found=found)
        return
    if disposition != "attachment" and content_type in ("text/html", "text/plain"):
        found.bodies.append((content_type, _decoded_text(part)))
    elif disposition != "attachment" and part.get_content_maintype() == "image":
        found.images.append(part)
    else:
        found.attachments.append(Attachment(name=_attachment_name(part), size=_payload_size(part)))


def _best_alternative(alternatives: list[Message]) -> Message:
    """HTML (alone or with its related images) over plain text; the last of equals (RFC 2046)."""
    for wanted in ("text/html", "multipart/related", "multipart/mixed", "text/plain"):
        matching = [part for part in alternatives if part.get_content_type() == wanted]
        if matching:
            return matching[-1]
    return alternatives[-1]


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _payload_size(part: Message) -> int:
    if part.is_multipart():
        return sum(_payload_size(sub) for sub in _message_subparts(part))
    return len(_payload(part))


def _message_subparts(part: Message) -> Iterator[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        yield from (sub for sub in payload if isinstance(sub, Message))


def _decoded_text(part: Message) -> str:
    """The part's text in its declared charset; mislabelled or unknown charsets never fail."""
    data = _payload(part)
    try:
        declared = part.get_content_charset() or "utf-8"
    except (ValueError, LookupError, UnicodeError):
        declared = "utf-8"
    # Mail often declares us-ascii or a wrong Latin charset over UTF-8 bytes: the declared
    # charset first, then UTF-8, each strictly; only then the declared one with replacement.
    for charset in (declared, "utf-8"):
        try:
            return data.decode(charset)
        except (LookupError, UnicodeError):
            continue
    try:
        return data.decode(declared, errors="replace")
    except (LookupError, UnicodeError):
        return data.decode("utf-8", errors="replace")


# --- Headers and names ----------------------------------------------------------------------


def _has_header(message: Message, name: str) -> bool:
    return any(key.lower() == name.lower() for key in message)


def _header_text(message: Message, name: str) -> str:
    """A header's decoded value (RFC 2047 encoded words included), or '' when absent."""
    try:
        values = message.get_all(name) or []
        text = ", ".join(str(value) for value in values)
    # The header parser has raised IndexError, AttributeError and others on hostile input;
    # the raw value is then shown rather than failing the whole mail.
    except Exception:
        text = ", ".join(raw for key, raw in message.raw_items() if key.lower() == name.lower())
    return _readable(text)


def _readable(text: str) -> str:
    """``text`` with 8-bit bytes the parser escaped read as UTF-8 and control characters gone."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(character if character >= " " or character == "\t" else " " for character in text)


def _attachment_name(part: Message) -> str:
    try:
        # RFC 2231 (filename*=) and RFC 2047 in names are both decoded here.
        name = part.get_filename() or part.get_param("name")
    # Hostile parameters can break the parser in many ways; a name is not worth the mail.
    except Exception:
        name = None
    if isinstance(name, tuple):  # an RFC 2231 value get_param leaves undecoded
        name = name[2]
    text = _readable(str(name)) if name else f"(unnamed {part.get_content_type()})"
    return text[:MAX_SHOWN_NAME_CHARS]


def _attached_mail_name(part: Message) -> str:
    name = _attachment_name(part) if part.get_filename() else ""
    if name:
        return name
    inner = next(_message_subparts(part), None)
    subject = _header_text(inner, "Subject") if inner is not None else ""
    return f"attached mail: {subject or '(no subject)'}"[:MAX_SHOWN_NAME_CHARS]


def _header_table(message: Message) -> str:
    rows = []
    for name in DISPLAYED_HEADERS:
        value = _header_text(message, name)
        if value:
            rows.append(f"<tr><th>{name}:</th><td>{html.escape(value)}</td></tr>")
    return f'<table class="mail-headers">{"".join(rows)}</table><hr>'


def _attachment_list(attachments: list[Attachment]) -> str:
    if not attachments:
        return ""
    items = "".join(f"<li>{html.escape(item.name)} ({_size_text(item.size)})</li>" for item in attachments)
    return f"<hr><p><b>Attachments ({len(attachments)}):</b></p><ul>{items}</ul>"


def _size_text(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024**2:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024**2:.1f} MB"


# --- The body -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyHtml:
    styles: str  # the mail's own <style> elements, for the page's head
    content: str


def _bodies_html(bodies: list[tuple[str, str]], images: _InlineImages) -> tuple[BodyHtml, int]:
    styles: list[str] = []
    content: list[str] = []
    removed = 0
    budget = MAX_BODY_CHARS
    for content_type, text in bodies:
        shortened = len(text) > budget
        text = text[:budget]
        budget -= len(text)
        if content_type == "text/html":
            body_styles, body, count = _clean_html(text, images)
            styles.append(body_styles)
            content.append(body)
            removed += count
        else:
            content.append(f'<pre class="mail-text">{html.escape(text)}</pre>')
        if shortened:
            content.append(f"<p><i>(The text is shortened here after {MAX_BODY_CHARS} characters.)</i></p>")
            break
    return BodyHtml(styles="".join(styles), content="".join(content)), removed


def _clean_html(text: str, images: _InlineImages) -> tuple[str, str, int]:
    """The body's styles and content as safe HTML, and how many things were taken out."""
    # Given as UTF-8 bytes with the encoding named, so a <meta charset> inside cannot
    # make lxml read the already decoded text as something else.
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True)
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8", "replace"), parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return "", "", 0  # nothing parseable: an empty body
    for image in root.iter("img"):
        source = image.get("src", "").strip()
        if source.lower().startswith("cid:"):
            uri = images.data_uri(unquote(source[4:]))
            if uri:
                image.set("src", uri)
            else:
                del image.attrib["src"]  # a part that is missing or not shown: the alt text stays
    removed = _strip_active_content(root)
    # After the cid: references became data: URIs, which it keeps as inline content.
    removed += strip_html_references(root)
    head = root.find("head")
    head_styles = head.iter("style") if head is not None else iter(())
    styles = "".join(lxml.html.tostring(style, encoding="unicode") for style in head_styles)
    body = root.find("body")
    if body is None:
        return styles, "", removed
    body.tag = "div"
    body.attrib.clear()  # the mail's body attributes (bgcolor, onload) stay out of the page
    body.set("class", "mail-body")
    return styles, lxml.html.tostring(body, encoding="unicode"), removed


def _strip_active_content(root: lxml.html.HtmlElement) -> int:
    """Event handlers and javascript: links; scripts themselves go with the references."""
    removed = 0
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for attribute in list(element.attrib):
            value = element.attrib[attribute]
            scripted = value.strip().lower().replace("\t", "").replace("\n", "").startswith("javascript:")
            if attribute.lower().startswith("on") or scripted:
                del element.attrib[attribute]
                removed += 1
    return removed


class _InlineImages:
    """The mail's inline images, found by Content-ID, each turned into a data: URI once."""

    def __init__(self, parts: list[Message]) -> None:
        self.parts = parts
        self.by_content_id: dict[str, Message] = {}
        for part in parts:
            content_id = _header_text(part, "Content-ID").strip().strip("<>").strip()
            if content_id:
                self.by_content_id.setdefault(content_id, part)
                self.by_content_id.setdefault(content_id.lower(), part)
        self.referenced: set[int] = set()
        self.budget = MAX_INLINE_IMAGE_BYTES
        self.uris: dict[int, str] = {}
        self.left_out = 0

    def data_uri(self, content_id: str) -> str:
        """The image a ``cid:`` reference names, or '' (no image) when there is none to show."""
        content_id = content_id.strip().strip("<>").strip()
        part = self.by_content_id.get(content_id) or self.by_content_id.get(content_id.lower())
        if part is None:
            return ""
        self.referenced.add(id(part))
        return self._uri(part)

    def unreferenced_html(self) -> str:
        shown = []
        for part in self.parts:
            if id(part) in self.referenced:
                continue
            uri = self._uri(part)
            if uri:
                name = html.escape(_attachment_name(part))
                shown.append(f'<p><img src="{uri}" alt="{name}"></p>')
        return "".join(shown)

    def _uri(self, part: Message) -> str:
        key = id(part)
        if key not in self.uris:
            self.uris[key] = self._encoded(part)
        return self.uris[key]

    def _encoded(self, part: Message) -> str:
        data = _payload(part)
        mime = magic.from_buffer(data[:4096], mime=True) if data else ""
        if mime not in SHOWN_IMAGE_TYPES or len(data) > self.budget:
            self.left_out += 1
            return ""
        self.budget -= len(data)
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
