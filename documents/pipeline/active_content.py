"""Removes what a PDF reader could run, send or open from a processed PDF.

An uploaded PDF is a hostile input, and the processed one is shown inline from the
application's origin, delivered to destinations and opened in desktop readers. It keeps
its pages, text, web links, bookmarks and form fields; it loses JavaScript (wherever it
hides: the open action, additional actions of the document, pages, annotations and form
fields, the JavaScript name tree, outlines, ``/Next`` chains), actions that launch
programs, submit forms, import data or open other files, links to addresses that are not
web or mail addresses, multimedia, XFA forms and embedded files. The original is never
touched: this works on the copy the pipeline writes.

The walk goes over every object a reader can reach rather than only the places the
specification names, so an action hidden somewhere unexpected is found all the same.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Name

# Action types that run code, reach the network or another file. URI links stay (an
# invoice's payment or web link is ordinary content) unless they point elsewhere.
_REMOVED_ACTIONS = {
    "/JavaScript": "javascript",
    "/Launch": "launch",
    "/SubmitForm": "submit",
    "/ImportData": "import",
    "/GoToR": "other_file",
    "/GoToE": "other_file",
    "/Rendition": "media",  # may carry a script of its own (/JS)
    "/RichMediaExecute": "media",
}
_WEB_SCHEMES = {"http", "https", "mailto"}
# Annotations that play media or hold files (3D ones can carry scripts in their streams).
_REMOVED_ANNOTATIONS = {
    "/FileAttachment": "embedded_file",
    "/RichMedia": "multimedia",
    "/Screen": "multimedia",
    "/Movie": "multimedia",
    "/Sound": "multimedia",
    "/3D": "multimedia",
}
# The order and wording of the processing log's "removed ..." sentence.
_LABELS = {
    "javascript": ("JavaScript action", "JavaScript actions"),
    "launch": ("launch action", "launch actions"),
    "submit": ("form submission", "form submissions"),
    "import": ("data import", "data imports"),
    "other_file": ("link to another file", "links to other files"),
    "uri": ("link to a non-web address", "links to non-web addresses"),
    "media": ("media action", "media actions"),
    "multimedia": ("multimedia annotation", "multimedia annotations"),
    "embedded_file": ("embedded file", "embedded files"),
    "xfa": ("XFA form", "XFA forms"),
}
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
_KEYS_OF_INTEREST = {"/OpenAction", "/A", "/AA", "/Next", "/Annots", "/EF", "/RF"}
_CONTAINERS = (pikepdf.Dictionary, pikepdf.Stream, pikepdf.Array)


@dataclass
class RemovedContent:
    """What was taken out of one PDF, counted by kind."""

    counts: Counter[str] = field(default_factory=Counter)
    # Indirect objects already counted, so one action referenced twice counts once.
    _seen: set[tuple[int, int]] = field(default_factory=set)

    def add(self, kind: str, obj: pikepdf.Object | None = None) -> None:
        if obj is not None and obj.is_indirect:
            if obj.objgen in self._seen:
                return
            self._seen.add(obj.objgen)
        self.counts[kind] += 1

    def describe(self) -> str:
        """For example "2 JavaScript actions and 1 embedded file"; empty when nothing was removed."""
        parts = [
            f"{self.counts[kind]} {singular if self.counts[kind] == 1 else plural}"
            for kind, (singular, plural) in _LABELS.items()
            if self.counts[kind]
        ]
        if len(parts) <= 1:
            return "".join(parts)
        return ", ".join(parts[:-1]) + f" and {parts[-1]}"


def strip_active_content(pdf: pikepdf.Pdf) -> RemovedContent:
    """Remove every script, unsafe action, multimedia annotation, XFA form and embedded
    file from ``pdf`` in place (the caller saves it); returns what was removed."""
    removed = RemovedContent()
    _strip_catalog(pdf.Root, removed)
    for obj in _reachable_dictionaries(pdf):
        _strip_dictionary(obj, removed)
    return removed


def _strip_catalog(root: pikepdf.Object, removed: RemovedContent) -> None:
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary):
        if "/JavaScript" in names:
            for script in _name_tree_values(names.JavaScript):
                removed.add("javascript", script)
            del names["/JavaScript"]
        if "/EmbeddedFiles" in names:
            for filespec in _name_tree_values(names.EmbeddedFiles):
                _remove_files(filespec, removed)
            del names["/EmbeddedFiles"]
    form = root.get("/AcroForm")
    if isinstance(form, pikepdf.Dictionary) and "/XFA" in form:
        del form["/XFA"]
        removed.add("xfa")
    # Without XFA there is nothing left for a reader to render instead of the pages.
    if "/NeedsRendering" in root:
        del root["/NeedsRendering"]


def _strip_dictionary(obj: pikepdf.Object, removed: RemovedContent) -> None:
    keys = set(obj.keys())
    if keys.isdisjoint(_KEYS_OF_INTEREST):  # most are fonts, resources, images: done at once
        return
    for key in ("/OpenAction", "/A"):
        # Only actions: an /OpenAction may be a plain destination, and /A means other
        # things in other dictionaries.
        if key in obj and _is_action(obj[key]):
            _replace_action(obj, key, removed)
    additional = obj.get("/AA")
    if isinstance(additional, pikepdf.Dictionary):
        for trigger in list(additional.keys()):
            _replace_action(additional, trigger, removed)
        if not additional.keys():
            del obj["/AA"]
    elif additional is not None:
        del obj["/AA"]
    if _is_action(obj) and "/Next" in obj:
        _replace_action(obj, "/Next", removed)
    annotations = obj.get("/Annots")
    if isinstance(annotations, pikepdf.Array):
        for index in reversed(range(len(annotations))):
            if _drops_annotation(annotations[index], removed):
                del annotations[index]
    _remove_files(obj, removed)


def _remove_files(filespec: pikepdf.Object | None, removed: RemovedContent) -> None:
    """A file specification keeps its name and loses the file it carries."""
    if not isinstance(filespec, pikepdf.Dictionary):
        return
    embedded = filespec.get("/EF")
    if isinstance(embedded, pikepdf.Dictionary):
        for _, stream in embedded.items():
            if isinstance(stream, pikepdf.Stream):
                removed.add("embedded_file", stream)
    for key in ("/EF", "/RF"):
        if key in filespec:
            del filespec[key]


def _replace_action(holder: pikepdf.Object, key: str, removed: RemovedContent) -> None:
    """``holder[key]`` becomes its action chain without the unsafe actions, or goes."""
    safe = _safe_chain(holder[key], removed, visited=set())
    if safe is None:
        del holder[key]
    else:
        holder[key] = safe


def _safe_chain(
    action: pikepdf.Object, removed: RemovedContent, *, visited: set[tuple[int, int]]
) -> pikepdf.Object | None:
    """The safe part of an action and its ``/Next`` actions (one or an array): an unsafe
    action is replaced by what follows it, a dictionary that is no action goes."""
    if isinstance(action, pikepdf.Array):
        kept = [safe for item in action if (safe := _safe_chain(item, removed, visited=visited)) is not None]
        return pikepdf.Array(kept) if kept else None
    if not _is_action(action):
        return None if isinstance(action, (pikepdf.Dictionary, pikepdf.Stream)) else action
    if action.is_indirect:
        if action.objgen in visited:  # a /Next loop: cut it here
            return None
        visited.add(action.objgen)
    following = _safe_chain(action.Next, removed, visited=visited) if "/Next" in action else None
    kind = _unsafe_kind(action)
    if kind is not None:
        removed.add(kind, action)
        return following
    if following is not None:
        action.Next = following
    elif "/Next" in action:
        del action["/Next"]
    return action


def _unsafe_kind(action: pikepdf.Object) -> str | None:
    kind = _REMOVED_ACTIONS.get(str(action.get("/S")))
    if kind is None and "/JS" in action:
        kind = "javascript"
    if kind is None and action.get("/S") == Name.URI:
        uri = action.get("/URI")
        if not isinstance(uri, pikepdf.String) or not _is_web_address(bytes(uri).decode("latin-1")):
            kind = "uri"
    return kind


def _is_web_address(uri: str) -> bool:
    # As a browser reads it: tabs and newlines anywhere and control characters and blanks
    # at either end do not count (" java\tscript:" is javascript:).
    cleaned = re.sub(r"[\t\n\r]", "", uri).strip(_C0_AND_SPACE)
    scheme = _SCHEME.match(cleaned)
    # No scheme: a reference relative to the document, which stays on a web address.
    return scheme is None or scheme.group(1).lower() in _WEB_SCHEMES


def _is_action(obj: pikepdf.Object) -> bool:
    return isinstance(obj, pikepdf.Dictionary) and isinstance(obj.get("/S"), pikepdf.Name)


def _drops_annotation(annotation: pikepdf.Object, removed: RemovedContent) -> bool:
    if not isinstance(annotation, pikepdf.Dictionary):
        return False
    kind = _REMOVED_ANNOTATIONS.get(str(annotation.get("/Subtype")))
    if kind == "embedded_file":
        _remove_files(annotation.get("/FS"), removed)  # counted as the files it held
        return True
    if kind is not None:
        removed.add(kind, annotation)
        return True
    # The pop-up note of a removed annotation would keep it in the file as its /Parent.
    parent = annotation.get("/Parent")
    return (
        annotation.get("/Subtype") == Name.Popup
        and isinstance(parent, pikepdf.Dictionary)
        and str(parent.get("/Subtype")) in _REMOVED_ANNOTATIONS
    )


def _name_tree_values(tree: pikepdf.Object) -> list[pikepdf.Object]:
    """The values of a name tree, read leniently (a broken tree yields what it can)."""
    values: list[pikepdf.Object] = []
    pending, visited = [tree], set()
    while pending:
        node = pending.pop()
        if not isinstance(node, pikepdf.Dictionary):
            continue
        if node.is_indirect:
            if node.objgen in visited:
                continue
            visited.add(node.objgen)
        names = node.get("/Names")
        if isinstance(names, pikepdf.Array):
            values.extend(names[index] for index in range(1, len(names), 2))
        kids = node.get("/Kids")
        if isinstance(kids, pikepdf.Array):
            pending.extend(kids)
    return values


def _reachable_dictionaries(pdf: pikepdf.Pdf) -> Iterator[pikepdf.Object]:
    """Every dictionary and stream a reader can reach from the trailer, each once.

    A dictionary's children are read after the caller has handled it, so what it removed
    is not visited (and what is unreachable is not written by ``save`` either).
    """
    pending: list[pikepdf.Object] = [pdf.trailer]
    visited: set[tuple[int, int]] = set()
    while pending:
        item = pending.pop()
        if item.is_indirect:
            if item.objgen in visited:
                continue
            visited.add(item.objgen)
        if isinstance(item, (pikepdf.Dictionary, pikepdf.Stream)):
            yield item
            children = [value for _, value in item.items()]
        else:
            children = list(item)
        pending.extend(child for child in children if isinstance(child, _CONTAINERS))
