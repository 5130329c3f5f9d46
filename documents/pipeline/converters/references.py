"""Take out the references a converter would load while opening a file.

The second layer behind running converters without network (``documents.pipeline.isolation``):
even a converter that could reach the network, or a Gotenberg server with egress, gets
nothing to fetch. What is taken out: in HTML, stylesheets, images, frames, objects and CSS
``url()``s that are not inline ``data:`` or ``#fragment`` references, relative paths
included (they resolve to files on the converting machine); in OpenDocument, every
``xlink:href`` outside the package (linked pictures, sections, tables, objects); in Office
Open XML, every external relationship and ``INCLUDEPICTURE``/``INCLUDETEXT``/``LINK``
field. Hyperlinks a reader clicks stay: nothing loads them during conversion.

Other formats (RTF, the binary .doc/.xls/.ppt) are not rewritten; isolation alone keeps
their converter from reaching anything.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import lxml.etree
import lxml.html

ODF_PREFIX = "application/vnd.oasis.opendocument."
OOXML_PREFIX = "application/vnd.openxmlformats-officedocument."
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ODF_HYPERLINKS = frozenset(
    {
        "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}a",
        "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}a",
    }
)
RELATIONSHIP = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
HYPERLINK_TYPE_SUFFIX = "/hyperlink"
WORD_NAMESPACE = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
FIELD_INSTRUCTION_TEXT = f"{{{WORD_NAMESPACE}}}instrText"
SIMPLE_FIELD = f"{{{WORD_NAMESPACE}}}fldSimple"
SIMPLE_FIELD_INSTRUCTION = f"{{{WORD_NAMESPACE}}}instr"
# Word fields that pull in a file or a URL when they are updated.
FETCHING_FIELD = re.compile(r"^\s*(INCLUDEPICTURE|INCLUDETEXT|LINK|DDE|DDEAUTO|IMPORT)\b", re.IGNORECASE)

# HTML attributes whose value a renderer loads, and the elements whose only job is loading.
HTML_FETCHING_ATTRIBUTES = frozenset(
    {"src", "srcset", "href", "background", "poster", "data", "codebase", "archive",
     "longdesc", "lowsrc", "dynsrc", "profile", "manifest", "icon", "xlink:href"}
)  # fmt: skip
HTML_HYPERLINK_ELEMENTS = frozenset({"a", "area"})
HTML_LOADING_ELEMENTS = frozenset({"link", "base", "script", "iframe", "frame", "object", "embed", "applet"})
CSS_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
CSS_IMPORT = re.compile(r"@import\b[^;]*;?", re.IGNORECASE)


def neutralise_references(*, source: Path, destination: Path, mime_type: str) -> int:
    """Write ``destination`` as ``source`` without loadable references; return how many went.

    Nothing is written when nothing had to go, so the converter reads the original.
    """
    rewrite: Callable[[Path], tuple[bytes, int]] | None
    if mime_type == "text/html":
        rewrite = _html_without_references
    elif mime_type.startswith(ODF_PREFIX) and zipfile.is_zipfile(source):
        rewrite = _odf_without_references
    elif mime_type.startswith(OOXML_PREFIX) and zipfile.is_zipfile(source):
        rewrite = _ooxml_without_references
    else:
        return 0
    try:
        content, removed = rewrite(source)
    except zipfile.BadZipFile:
        return 0  # a container too broken to rewrite is the converter's to judge, isolated
    if removed:
        destination.write_bytes(content)
    return removed


def _is_inline(reference: str) -> bool:
    """A reference that loads nothing: a fragment in the same document or inline data."""
    value = "".join(character for character in reference if character > " ").lower()
    return value.startswith(("#", "data:")) or value == ""


def _html_without_references(source: Path) -> tuple[bytes, int]:
    try:
        root = lxml.html.document_fromstring(source.read_bytes())
    except lxml.etree.ParserError:
        return b"", 0  # nothing to parse, so nothing to load
    removed = strip_html_references(root)
    if removed:
        _declare_utf8(root)
    return b"<!DOCTYPE html>\n" + lxml.html.tostring(root, encoding="utf-8"), removed


def strip_html_references(root: lxml.html.HtmlElement) -> int:
    """Take the loadable references out of a parsed HTML tree, in place; return how many went.

    For callers that build a page from HTML of their own (a mail's body) and so hold a tree
    rather than a file.
    """
    removed = 0
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions load nothing
        tag = element.tag.lower()
        if tag in HTML_LOADING_ELEMENTS or _is_refresh(element):
            element.drop_tree()
            removed += 1
            continue
        for attribute in list(element.attrib):
            name = attribute.lower()
            value = element.attrib[attribute]
            if name == "style":
                cleaned, count = _css_without_references(value)
                element.attrib[attribute] = cleaned
                removed += count
            elif (
                name in HTML_FETCHING_ATTRIBUTES
                and tag not in HTML_HYPERLINK_ELEMENTS
                and not _is_inline(value)
            ):
                del element.attrib[attribute]
                removed += 1
        if tag == "style" and element.text:
            element.text, count = _css_without_references(element.text)
            removed += count
    return removed


def _is_refresh(element: lxml.html.HtmlElement) -> bool:
    http_equiv: str = element.get("http-equiv", "")
    return element.tag.lower() == "meta" and http_equiv.lower() == "refresh"


def _declare_utf8(root: lxml.html.HtmlElement) -> None:
    """The rewritten page is UTF-8 whatever it was, so it must say so and nothing else."""
    for meta in root.iter("meta"):
        if meta.get("charset") is not None or meta.get("http-equiv", "").lower() == "content-type":
            meta.drop_tree()
    head = root.find("head")
    if head is None:
        head = lxml.html.Element("head")
        root.insert(0, head)
    head.insert(0, lxml.html.Element("meta", charset="utf-8"))


def _css_without_references(css: str) -> tuple[str, int]:
    removed = 0

    def blank_url(match: re.Match[str]) -> str:
        nonlocal removed
        if _is_inline(match.group(2)):
            return match.group(0)
        removed += 1
        return "url()"

    without_urls = CSS_URL.sub(blank_url, css)
    without_imports, imports = CSS_IMPORT.subn("", without_urls)
    return without_imports, removed + imports


def _odf_without_references(source: Path) -> tuple[bytes, int]:
    def clean(part: lxml.etree._Element) -> int:
        removed = 0
        for element in part.iter():
            href = element.get(XLINK_HREF)
            if href is None or element.tag in ODF_HYPERLINKS or _inside_package(href):
                continue
            del element.attrib[XLINK_HREF]
            removed += 1
        return removed

    return _rewritten_zip(source, clean, parts=lambda name: name.endswith(".xml"))


def _inside_package(reference: str) -> bool:
    """An ODF reference to a part of the same file (``Pictures/x.png``, ``./Object 1``)."""
    value = reference.strip()
    if _is_inline(value):
        return True
    if ":" in value.split("/", 1)[0] or value.startswith(("/", "\\")):
        return False  # a URL scheme or an absolute path
    segments = value.replace("\\", "/").split("/")
    return ".." not in segments


def _ooxml_without_references(source: Path) -> tuple[bytes, int]:
    def clean(part: lxml.etree._Element) -> int:
        removed = 0
        for element in list(part.iter()):
            parent = element.getparent()
            if element.tag == RELATIONSHIP and parent is not None and _loads_external_target(element):
                parent.remove(element)
                removed += 1
            elif element.tag == FIELD_INSTRUCTION_TEXT and _fetching_field(element.text):
                element.text = ""
                removed += 1
            elif element.tag == SIMPLE_FIELD and _fetching_field(element.get(SIMPLE_FIELD_INSTRUCTION)):
                element.set(SIMPLE_FIELD_INSTRUCTION, "")
                removed += 1
        return removed

    return _rewritten_zip(source, clean, parts=lambda name: name.endswith((".rels", ".xml")))


def _fetching_field(instruction: str | None) -> bool:
    return bool(FETCHING_FIELD.match(instruction or ""))


def _loads_external_target(relationship: lxml.etree._Element) -> bool:
    external = (relationship.get("TargetMode") or "").lower() == "external"
    hyperlink = (relationship.get("Type") or "").endswith(HYPERLINK_TYPE_SUFFIX)
    return external and not hyperlink


def _rewritten_zip(
    source: Path,
    clean: Callable[[lxml.etree._Element], int],
    *,
    parts: Callable[[str], bool],
) -> tuple[bytes, int]:
    """The container with ``clean`` applied to each XML part ``parts`` selects.

    Runs after ``refuse_zip_bomb``, so reading whole parts into memory is bounded. A part
    that cannot be read or parsed is the converter's to judge; when a rewrite is needed,
    an unreadable part (a damaged thumbnail, say) is left out of the copy.
    """
    cleaned: dict[str, bytes] = {}
    removed = 0
    with zipfile.ZipFile(source) as original:
        for entry in original.infolist():
            if not parts(entry.filename):
                continue
            tree = _parsed_part(original, entry)
            count = clean(tree) if tree is not None else 0
            if count:
                cleaned[entry.filename] = lxml.etree.tostring(
                    tree, xml_declaration=True, encoding="UTF-8", standalone=True
                )
                removed += count
        if not removed:
            return b"", 0
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as rewritten:
            for entry in original.infolist():
                data = cleaned.get(entry.filename)
                if data is None:
                    try:
                        data = original.read(entry)
                    except (zipfile.BadZipFile, OSError, EOFError):
                        continue
                # Entries keep their order and method: ODF wants "mimetype" first and stored.
                rewritten.writestr(entry, data, compress_type=entry.compress_type)
    return buffer.getvalue(), removed


def _parsed_part(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> lxml.etree._Element | None:
    # Parts are hostile too: no entities, no DTD, no network. A parser per part, since
    # lxml parsers are not to be shared between threads.
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return lxml.etree.fromstring(archive.read(entry), parser)
    except (zipfile.BadZipFile, OSError, EOFError, lxml.etree.XMLSyntaxError):
        return None
