"""Documents that make a converter fetch a URL: built in the tests, never committed as files.

Each builder takes the URL to reference and returns the file's bytes. The references are
the ones office programs load while opening a file, not hyperlinks a reader would click.
"""

from __future__ import annotations

import io
import zipfile

ODF_TEXT = "application/vnd.oasis.opendocument.text"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def html_fetching(url: str) -> bytes:
    """An HTML page with a linked stylesheet, an image, a CSS background and an import."""
    return (
        "<!DOCTYPE html><html><head>"
        f'<link rel="stylesheet" href="{url}/linked.css">'
        f'<style>@import url("{url}/imported.css"); body {{ background: url({url}/background.png); }}</style>'
        "</head><body><p>Quarterly report</p>"
        f'<img src="{url}/image.png" width="100" height="100">'
        f"<p style=\"background-image: url('{url}/inline.png')\">Totals</p>"
        f'<p><a href="{url}/clickable">a link a reader may click</a></p>'
        "</body></html>"
    ).encode()


def odt_fetching(url: str) -> bytes:
    """An OpenDocument text whose picture is linked (``xlink:href``), not embedded."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
        ' xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
        ' xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2">'
        "<office:body><office:text><text:p>Linked picture"
        '<draw:frame draw:name="p1" svg:width="2cm" svg:height="2cm" text:anchor-type="as-char">'
        f'<draw:image xlink:href="{url}/odt.png" xlink:type="simple"'
        ' xlink:show="embed" xlink:actuate="onLoad"/>'
        "</draw:frame></text:p>"
        f'<text:p><text:a xlink:type="simple" xlink:href="{url}/clickable">a link</text:a></text:p>'
        "</office:text></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODF_TEXT}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    return _zip([("mimetype", ODF_TEXT), ("META-INF/manifest.xml", manifest), ("content.xml", content)])


def docx_fetching(url: str) -> bytes:
    """A Word document whose picture is an external relationship (``TargetMode="External"``)."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
        "</Types>"
    )
    package_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    document_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        f'relationships/image" Target="{url}/docx.png" TargetMode="External"/>'
        '<Relationship Id="rId6" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        f'relationships/hyperlink" Target="{url}/clickable" TargetMode="External"/>'
        "</Relationships>"
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
        ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
        ' xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"'
        ' xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
        ' xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture">'
        "<w:body><w:p><w:r><w:t>Linked picture</w:t></w:r></w:p>"
        '<w:p><w:r><w:drawing><wp:inline><wp:extent cx="914400" cy="914400"/>'
        '<wp:docPr id="1" name="Picture 1"/><a:graphic>'
        '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic>'
        '<pic:nvPicPr><pic:cNvPr id="1" name="x.png"/><pic:cNvPicPr/></pic:nvPicPr>'
        '<pic:blipFill><a:blip r:link="rId5"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>'
        '<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="914400" cy="914400"/></a:xfrm>'
        '<a:prstGeom prst="rect"/></pic:spPr></pic:pic></a:graphicData></a:graphic></wp:inline>'
        "</w:drawing></w:r></w:p>"
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f'<w:r><w:instrText> INCLUDEPICTURE "{url}/field.png" \\d </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        '<w:p><w:hyperlink r:id="rId6"><w:r><w:t>a link</w:t></w:r></w:hyperlink></w:p>'
        "</w:body></w:document>"
    )
    return _zip(
        [
            ("[Content_Types].xml", content_types),
            ("_rels/.rels", package_rels),
            ("word/document.xml", document),
            ("word/_rels/document.xml.rels", document_rels),
        ]
    )


def rtf_fetching(url: str) -> bytes:
    """An RTF file with an ``INCLUDEPICTURE`` field: a format nothing rewrites before conversion."""
    return (
        "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Helvetica;}}\\f0 Linked picture\\par "
        f'{{\\field{{\\*\\fldinst INCLUDEPICTURE "{url}/rtf.png" \\\\d}}{{\\fldrslt }}}}\\par }}'
    ).encode()


def _zip(members: list[tuple[str, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members:
            # ODF wants its mimetype first and stored, so programs can sniff it.
            method = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(name, text, compress_type=method)
    return buffer.getvalue()
