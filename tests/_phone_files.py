"""Builders of small synthetic photo files with embedded depth (GDepth, XDM, Dynamic Depth).

They write the bytes the formats define (APP1 XMP segments, extended XMP chunks,
container items appended to the JPEG) so the readers are tested on files whose
content is known exactly, including broken ones.
"""
from __future__ import annotations

import base64
import hashlib
import io

import numpy as np
from PIL import Image

XMP_MAIN = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXT = b"http://ns.adobe.com/xmp/extension/\x00"


def png_bytes(values: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(values) if mode is None else Image.fromarray(values).convert(mode)
    img.save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(photo: np.ndarray, orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(photo)
    kw = {}
    if orientation is not None:
        exif = img.getexif()
        exif[0x0112] = orientation
        kw["exif"] = exif
    img.save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def app1(payload: bytes) -> bytes:
    assert len(payload) + 2 <= 0xFFFF
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def insert_segments(jpeg: bytes, segments: list[bytes]) -> bytes:
    """The JPEG with segments inserted right after SOI (and after an EXIF APP1 if present)."""
    assert jpeg[:2] == b"\xff\xd8"
    pos = 2
    while jpeg[pos:pos + 2] in (b"\xff\xe0", b"\xff\xe1"):  # keep JFIF/EXIF first
        pos += 2 + int.from_bytes(jpeg[pos + 2:pos + 4], "big")
    return jpeg[:pos] + b"".join(segments) + jpeg[pos:]


def xmp_packet(description_attrs: str = "", body: str = "", namespaces: str = "") -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" {namespaces} {description_attrs}>{body}</rdf:Description>'
            f'</rdf:RDF></x:xmpmeta>').encode()


def extended_segments(extended: bytes, guid: str, chunk: int = 30000) -> list[bytes]:
    out = []
    for offset in range(0, len(extended), chunk):
        part = extended[offset:offset + chunk]
        out.append(app1(XMP_EXT + guid.encode() + len(extended).to_bytes(4, "big") + offset.to_bytes(4, "big") + part))
    return out


def gdepth_jpeg(photo: np.ndarray, depth_png: bytes | str, *, fmt: str = "RangeInverse", near: float = 1.0,
                far: float = 10.0, orientation: int | None = None, focal_point: tuple[float, float] | None = None,
                focal_distance: float | None = None, drop_chunk: int | None = None, chunk: int = 30000) -> bytes:
    """A JPEG with a Google depth map (GDepth) whose data lives in the extended XMP."""
    data = depth_png if isinstance(depth_png, str) else base64.b64encode(depth_png).decode()
    extended = xmp_packet(f'GDepth:Data="{data}"', namespaces='xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/"')
    guid = hashlib.md5(extended).hexdigest().upper()
    focus = ""
    if focal_point is not None:
        focus = (f'GFocus:FocalPointX="{focal_point[0]}" GFocus:FocalPointY="{focal_point[1]}" '
                 f'GFocus:FocalDistance="{focal_distance}"')
    main = xmp_packet(f'GDepth:Format="{fmt}" GDepth:Near="{near}" GDepth:Far="{far}" GDepth:Mime="image/png" '
                      f'{focus} xmpNote:HasExtendedXMP="{guid}"',
                      namespaces='xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
                                 'xmlns:GFocus="http://ns.google.com/photos/1.0/focus/" '
                                 'xmlns:xmpNote="http://ns.adobe.com/xmp/note/"')
    segments = extended_segments(extended, guid, chunk)
    if drop_chunk is not None:
        del segments[drop_chunk]
    return insert_segments(jpeg_bytes(photo, orientation), [app1(XMP_MAIN + main)] + segments)


def xdm_jpeg(photo: np.ndarray, depth16: np.ndarray, *, near: float = 0.0, far: float = 65535.0) -> bytes:
    """A JPEG with an XDM 1.0 device: one camera whose depth map is a 16-bit PNG, RangeLinear."""
    data = base64.b64encode(png_bytes(depth16)).decode()
    body = (f'<Device:Cameras><rdf:Seq><rdf:li rdf:parseType="Resource">'
            f'<Camera:DepthMap rdf:parseType="Resource"><Depthmap:Format>RangeLinear</Depthmap:Format>'
            f'<Depthmap:Near>{near}</Depthmap:Near><Depthmap:Far>{far}</Depthmap:Far>'
            f'<Depthmap:Metric>False</Depthmap:Metric><Depthmap:Data>{data}</Depthmap:Data>'
            f'</Camera:DepthMap></rdf:li></rdf:Seq></Device:Cameras>')
    ns = ('xmlns:Device="http://ns.xdm.org/photos/1.0/device/" xmlns:Camera="http://ns.xdm.org/photos/1.0/camera/" '
          'xmlns:Depthmap="http://ns.xdm.org/photos/1.0/depthmap/"')
    extended = xmp_packet(body=body, namespaces=ns)
    guid = hashlib.md5(extended).hexdigest().upper()
    main = xmp_packet(f'xmpNote:HasExtendedXMP="{guid}"', namespaces='xmlns:xmpNote="http://ns.adobe.com/xmp/note/"')
    return insert_segments(jpeg_bytes(photo), [app1(XMP_MAIN + main)] + extended_segments(extended, guid))


def dynamic_depth_jpeg(photo: np.ndarray, depth16: np.ndarray, *, near: float, far: float,
                       fmt: str = "RangeLinear", units: str = "Meters", padding: int = 3) -> bytes:
    """A JPEG with Dynamic Depth 1.0 metadata and its depth PNG appended as a container item."""
    png = png_bytes(depth16)
    body = ('<Device:Container><Container:Directory><rdf:Seq>'
            '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" Item:Length="0" '
            'Item:DataURI="primary_image"/></rdf:li>'
            f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/png" Item:Length="{len(png)}" '
            f'Item:Padding="{padding}" Item:DataURI="android/depthmap"/></rdf:li>'
            '</rdf:Seq></Container:Directory></Device:Container>'
            '<Device:Cameras><rdf:Seq><rdf:li rdf:parseType="Resource"><Device:Camera rdf:parseType="Resource">'
            f'<Camera:DepthMap DepthMap:Format="{fmt}" DepthMap:Near="{near}" DepthMap:Far="{far}" '
            f'DepthMap:Units="{units}" DepthMap:ItemSemantic="Depth" DepthMap:DepthURI="android/depthmap"/>'
            '</Device:Camera></rdf:li></rdf:Seq></Device:Cameras>')
    ns = ('xmlns:Device="http://ns.google.com/photos/dd/1.0/device/" '
          'xmlns:Container="http://ns.google.com/photos/dd/1.0/container/" '
          'xmlns:Item="http://ns.google.com/photos/dd/1.0/item/" '
          'xmlns:Camera="http://ns.google.com/photos/dd/1.0/camera/" '
          'xmlns:DepthMap="http://ns.google.com/photos/dd/1.0/depthmap/"')
    main = xmp_packet(body=body, namespaces=ns)
    return insert_segments(jpeg_bytes(photo), [app1(XMP_MAIN + main)]) + png + b"\x00" * padding
