"""XMP packets: finding them in JPEG segments, joining extended XMP, reading properties.

XMP is RDF/XML.  A simple property appears either as an attribute of an
``rdf:Description`` (``GDepth:Near="18.8"``) or as a child element with text
(``<apdi:FloatMinValue>1.49</apdi:FloatMinValue>``); structures nest further
(``rdf:parseType="Resource"`` elements, ``rdf:Seq``/``rdf:li`` lists).  The
helpers here read both spellings and never resolve entities or DTDs: metadata
comes from untrusted files.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable

from ..imagefile import ImageFileError

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP_MAIN = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"
XMP_NOTE = "http://ns.adobe.com/xmp/note/"
#: Largest XMP text parsed (main packet or joined extended XMP), bytes.  Extended
#: XMP is split into <64 KB APP1 segments; a depth map and a second photo as
#: base64 rarely exceed a few MB.
MAX_XMP_BYTES = 64 * 2**20


def parse(packet: bytes, what: str) -> ET.Element:
    """Parse one XMP packet (``<x:xmpmeta>`` or bare ``<rdf:RDF>``); one-line error when malformed."""
    if len(packet) > MAX_XMP_BYTES:
        raise ImageFileError(f"{what}: XMP of {len(packet)} bytes exceeds the {MAX_XMP_BYTES} byte limit")
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise ImageFileError(f"{what}: XMP with a DTD or entities is not accepted")
    start = packet.find(b"<x:xmpmeta")
    if start < 0:
        start = packet.find(b"<rdf:RDF")
    if start < 0:
        raise ImageFileError(f"{what}: XMP packet without <x:xmpmeta> or <rdf:RDF>")
    end_tag = b"</x:xmpmeta>" if packet.startswith(b"<x:xmpmeta", start) else b"</rdf:RDF>"
    end = packet.find(end_tag, start)
    if end < 0:
        raise ImageFileError(f"{what}: XMP packet is truncated (no {end_tag.decode()})")
    try:
        return ET.fromstring(packet[start:end + len(end_tag)])
    except ET.ParseError as exc:
        raise ImageFileError(f"{what}: malformed XMP ({exc})") from None


def descriptions(root: ET.Element) -> list[ET.Element]:
    """The top-level ``rdf:Description`` elements of a packet."""
    rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f"{{{RDF}}}RDF")
    return [] if rdf is None else rdf.findall(f"{{{RDF}}}Description")


def fields(element: ET.Element) -> dict[str, str]:
    """Simple properties of a struct or description: ``{"{ns}Name": text}``.

    Attributes (other than ``rdf:*``) and child elements that carry only text;
    an ``rdf:Description`` or ``rdf:value`` child (an alternative RDF spelling of
    a struct) is merged in.
    """
    out = {k: v for k, v in element.attrib.items() if not k.startswith(f"{{{RDF}}}")}
    for child in element:
        if child.tag in (f"{{{RDF}}}Description", f"{{{RDF}}}value"):
            for k, v in fields(child).items():
                out.setdefault(k, v)
        elif len(child) == 0 and child.text is not None and child.text.strip():
            out.setdefault(child.tag, child.text.strip())
    return out


def properties(root: ET.Element) -> dict[str, str]:
    """All simple top-level properties of a packet (first occurrence wins)."""
    out: dict[str, str] = {}
    for desc in descriptions(root):
        for k, v in fields(desc).items():
            out.setdefault(k, v)
    return out


def struct(element: ET.Element | None) -> ET.Element | None:
    """The element holding a struct's fields (itself, or its ``rdf:Description`` child)."""
    if element is None:
        return None
    inner = element.find(f"{{{RDF}}}Description")
    return inner if inner is not None else element


def items(element: ET.Element | None) -> list[ET.Element]:
    """The ``rdf:li`` members of an array property (``rdf:Seq``/``Bag``/``Alt``), each as its struct."""
    if element is None:
        return []
    out = []
    for container in element:
        if container.tag in (f"{{{RDF}}}Seq", f"{{{RDF}}}Bag", f"{{{RDF}}}Alt"):
            for li in container.findall(f"{{{RDF}}}li"):
                value = li.find(f"{{{RDF}}}value")  # a struct in a list may be wrapped in rdf:value
                out.append(struct(value if value is not None else li))
    return out


def floats(element: ET.Element | None) -> list[float] | None:
    """An ``rdf:Seq`` of numbers as floats, or None."""
    if element is None:
        return None
    try:
        return [float((li.text or "").strip()) for li in element.iter(f"{{{RDF}}}li")]
    except ValueError:
        return None


def jpeg_xmp(applist: Iterable[tuple[str, bytes]], what: str) -> tuple[ET.Element | None, ET.Element | None]:
    """The main XMP packet of a JPEG and its extended XMP (both parsed), from PIL's ``applist``.

    Extended XMP (XMP spec part 3, 1.1.3.1) is split over APP1 segments, each
    ``"http://ns.adobe.com/xmp/extension/\\0"`` + 32-byte GUID + 4-byte total
    length + 4-byte offset + data; the main packet names the GUID in
    ``xmpNote:HasExtendedXMP``.  Chunks of other GUIDs are ignored; missing,
    overlapping or out-of-range chunks raise :class:`ImageFileError`.
    """
    main = None
    chunks: dict[bytes, list[tuple[int, int, bytes]]] = {}
    for marker, data in applist:
        if marker != "APP1":
            continue
        if data.startswith(XMP_MAIN) and main is None:
            main = parse(data[len(XMP_MAIN):], what)
        elif data.startswith(XMP_EXTENSION):
            body = data[len(XMP_EXTENSION):]
            if len(body) < 40:
                raise ImageFileError(f"{what}: extended XMP segment too short ({len(body)} bytes)")
            guid, total, offset = body[:32], int.from_bytes(body[32:36], "big"), int.from_bytes(body[36:40], "big")
            chunks.setdefault(guid, []).append((total, offset, body[40:]))
    if main is None:
        return None, None
    guid = properties(main).get(f"{{{XMP_NOTE}}}HasExtendedXMP")
    if guid is None:
        return main, None
    parts = chunks.get(guid.encode("ascii", "replace"))
    if not parts:
        raise ImageFileError(f"{what}: the XMP names extended XMP {guid} but the file holds none (truncated?)")
    total = parts[0][0]
    if total > MAX_XMP_BYTES:
        raise ImageFileError(f"{what}: extended XMP of {total} bytes exceeds the {MAX_XMP_BYTES} byte limit")
    buf = bytearray(total)
    covered = 0
    for t, offset, data in sorted(parts, key=lambda p: p[1]):
        if t != total or offset != covered or offset + len(data) > total:
            raise ImageFileError(f"{what}: extended XMP chunks are inconsistent or missing (truncated file?)")
        buf[offset:offset + len(data)] = data
        covered += len(data)
    if covered != total:
        raise ImageFileError(f"{what}: extended XMP is incomplete ({covered} of {total} bytes; truncated file?)")
    return main, parse(bytes(buf), what)
