"""DeepScores XML: one ``<annotation>`` file per page, the format the published DeepScores ships.

Box convention (as in the published files, whose loaders multiply by the page size): ``xmin``/``xmax``
are fractions of the page width and ``ymin``/``ymax`` fractions of its height, with
``xmin = x0 / W`` and ``xmax = x1 / W`` where ``x0 .. x1`` are the pixel edges of `Symbol.bbox_xyxy`
(``x1`` exclusive, so ``(xmax - xmin) * W`` is the width in pixels). Fractions are written as the
shortest decimal that reads back as the same float (``repr``), so ``round(float(text) * W)`` gives
the exact pixel edge again.

Elements beyond the published format, which other readers ignore: per page ``<font>``,
``<score_id>``, ``<page_number>``; per object ``<instance>``, ``<glyph>``, ``<font>``,
``<hidden>0|1</hidden>``, ``<occluded>0|1</occluded>``, and, only where the symbol has them,
``<o_bbox>`` (the oriented box: 8 numbers ``x0 y0 … x3 y3`` in page pixels, not fractions, corners
in the published obb_anns order), ``<area>`` (ink pixel count), ``<onset>`` (quarter notes from the
score start) and ``<rel_position>`` (notehead staff position). Files without them (the published
dataset, our older files) still read: the instance id is then the object's 1-based position and the
optional fields are None.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from deepscores.formats import FormatError
from deepscores.formats.atomic import atomic_write_bytes
from deepscores.page import Page

#: The folder, relative to the dataset root, that ``<filename>`` lives in.
IMAGE_FOLDER = "images_png"


#: Slots: a finishing step holds every record of the dataset at once (splits, COCO, patches), and
#: an object's attribute dict was a fifth of its size.
@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """One symbol as the XML stores it; ``bbox_xyxy`` in pixel edges, end exclusive (as `Symbol`)."""

    class_name: str
    bbox_xyxy: tuple[int, int, int, int]
    instance_id: int
    glyph: str = ""
    font: str = ""
    hidden: bool = False
    occluded: bool = False
    #: Oriented box, 4 corners ``(x0, y0, …, x3, y3)`` in page pixels (obb_anns corner order), or None.
    o_bbox: tuple[float, ...] | None = None
    #: Ink pixel count of the symbol's full-extent mask, or None.
    area_px: int | None = None
    #: Quarter notes from the score start, or None.
    onset: float | None = None
    #: Notehead staff position (see `Symbol.rel_position`), or None.
    rel_position: int | None = None


@dataclass(frozen=True, slots=True)
class PageRecord:
    """A page's annotation file read back: everything but the pixels."""

    filename: str
    width: int
    height: int
    depth: int
    font: str
    score_id: str
    page_number: int
    objects: list[ObjectRecord] = field(default_factory=list)


def page_xml(page: Page, name: str) -> bytes:
    """The annotation file of ``page``, whose image is ``images_png/<name>.png``.

    Written as text, in exactly the layout lxml's pretty printer gives (tested against it): building
    an element tree cost ≈ 6 ms on a dense page, a fifth of the page's file writing.
    """
    width, height = page.width, page.height
    lines = [
        "<?xml version='1.0' encoding='UTF-8'?>", "<annotation>", f"  <folder>{_esc(IMAGE_FOLDER)}</folder>",
        f"  <filename>{_esc(name)}.png</filename>", "  <size>", f"    <width>{width}</width>",
        f"    <height>{height}</height>", "    <depth>1</depth>", "  </size>", "  <segmented>0</segmented>",
        f"  <font>{_esc(page.font)}</font>", f"  <score_id>{_esc(page.score_id)}</score_id>",
        f"  <page_number>{page.page_number}</page_number>",
    ]
    for symbol in page.symbols:
        x0, y0, x1, y1 = symbol.bbox_xyxy
        lines += [
            "  <object>", f"    <name>{_esc(symbol.class_name)}</name>", "    <bndbox>",
            f"      <xmin>{x0 / width!r}</xmin>", f"      <ymin>{y0 / height!r}</ymin>",
            f"      <xmax>{x1 / width!r}</xmax>", f"      <ymax>{y1 / height!r}</ymax>", "    </bndbox>",
            f"    <instance>{symbol.instance_id}</instance>", f"    <glyph>{_esc(symbol.glyph)}</glyph>",
            f"    <font>{_esc(symbol.font)}</font>", f"    <hidden>{int(symbol.hidden)}</hidden>",
            f"    <occluded>{int(symbol.occluded)}</occluded>",
        ]
        if symbol.o_bbox is not None:
            lines.append("    <o_bbox>%r %r %r %r %r %r %r %r</o_bbox>" % tuple(map(float, symbol.o_bbox)))
        if symbol.area_px is not None:
            lines.append(f"    <area>{int(symbol.area_px)}</area>")
        if symbol.onset is not None:
            lines.append(f"    <onset>{float(symbol.onset)!r}</onset>")
        if symbol.rel_position is not None:
            lines.append(f"    <rel_position>{int(symbol.rel_position)}</rel_position>")
        lines.append("  </object>")
    lines.append("</annotation>\n")
    return "\n".join(lines).encode("utf-8")


def _esc(text: str) -> str:
    # What lxml escapes in element text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_page_xml(path: str | Path, page: Page, name: str) -> None:
    """Write ``page_xml(page, name)`` to ``path`` atomically."""
    atomic_write_bytes(path, page_xml(page, name))


# -- reading -------------------------------------------------------------------------------------
class _Bad(Exception):
    """Internal: a structural problem, turned into a FormatError naming the file."""


# The field helpers take a dict of child tag → text (None for an empty element): each child's
# text is fetched once, which is most of what reading a dense page costs.
def _texts(parent: etree._Element) -> dict[str, str | None]:
    return {child.tag: child.text for child in parent}


def _field(fields: dict, tag: str, default: str | None = None, where: str = "object") -> str:
    text = fields.get(tag)
    if text is None:
        if default is not None:
            return default
        raise _Bad(f"missing <{tag}> in <{where}>")
    return text.strip()


def _int_field(fields: dict, tag: str, default: str | None, where: str = "object") -> int:
    text = _field(fields, tag, default, where)
    try:
        return int(text)
    except ValueError:
        raise _Bad(f"<{tag}> is not an integer: {text!r}") from None


def _flag_field(fields: dict, tag: str) -> bool:
    text = _field(fields, tag, "0")
    if text not in ("0", "1"):
        raise _Bad(f"<{tag}> must be 0 or 1, found {text!r}")
    return text == "1"


def _optional_int(fields: dict, tag: str) -> int | None:
    text = fields.get(tag)
    return None if text is None or not text.strip() else _int_field(fields, tag, "")


def _optional_floats(fields: dict, tag: str, count: int) -> tuple[float, ...] | None:
    text = fields.get(tag)
    if text is None or not text.strip():
        return None
    try:
        values = tuple(map(float, text.split()))
    except ValueError:
        raise _Bad(f"<{tag}> is not {count} numbers: {text.strip()!r}") from None
    if len(values) != count or not all(map(math.isfinite, values)):
        raise _Bad(f"<{tag}> is not {count} finite numbers: {text.strip()!r}")
    return values


def _edge_text(edges: dict, tag: str, extent: int) -> int:
    text = edges.get(tag)
    if text is None:
        raise _Bad(f"missing <{tag}> in <bndbox>")
    try:
        return round(float(text) * extent)
    except (ValueError, OverflowError):
        raise _Bad(f"<{tag}> is not a number: {text!r}") from None


def _object(index: int, fields: dict, edges: dict, width: int, height: int, font: str) -> ObjectRecord:
    """Object ``index`` (1-based) of a page from its child texts and its box's (None: empty element)."""
    try:
        bbox = (_edge_text(edges, "xmin", width), _edge_text(edges, "ymin", height),
                _edge_text(edges, "xmax", width), _edge_text(edges, "ymax", height))
        return ObjectRecord(
            class_name=_field(fields, "name"), bbox_xyxy=bbox,
            instance_id=_int_field(fields, "instance", str(index)),
            glyph=_field(fields, "glyph", ""), font=_field(fields, "font", font),
            hidden=_flag_field(fields, "hidden"), occluded=_flag_field(fields, "occluded"),
            o_bbox=_optional_floats(fields, "o_bbox", 8), area_px=_optional_int(fields, "area"),
            onset=(onset[0] if (onset := _optional_floats(fields, "onset", 1)) else None),
            rel_position=_optional_int(fields, "rel_position"),
        )
    except _Bad as exc:
        raise _Bad(f"object {index}: {exc}") from None


def _page(page: dict, size: dict, objects: list[ObjectRecord]) -> PageRecord:
    return PageRecord(
        filename=_field(page, "filename", None, "annotation"), width=_int_field(size, "width", None, "size"),
        height=_int_field(size, "height", None, "size"), depth=_int_field(size, "depth", "1", "size"),
        font=_field(page, "font", "", "annotation"), score_id=_field(page, "score_id", "", "annotation"),
        page_number=_int_field(page, "page_number", "0", "annotation"), objects=objects,
    )


def _page_size(size: dict) -> tuple[int, int]:
    width, height = _int_field(size, "width", None, "size"), _int_field(size, "height", None, "size")
    if width <= 0 or height <= 0:
        raise _Bad(f"page size {width}x{height} is empty")
    return width, height


def _parse(data: bytes) -> PageRecord:
    record = _parse_own(data)
    if record is not None:
        return record
    # No entities, no DTD, no network: the file may come from anywhere.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(data, parser)
    if root.tag != "annotation":
        raise _Bad(f"root element is <{root.tag}>, expected <annotation>")
    size_element = root.find("size")
    if size_element is None:
        raise _Bad("missing <size>")
    size = _texts(size_element)
    width, height = _page_size(size)
    page = _texts(root)
    font = _field(page, "font", "", "annotation")
    objects = []
    for index, obj in enumerate(root.iterfind("object"), start=1):
        # One pass over the children instead of a find() per field: pages hold hundreds of
        # objects, and this loop is what COCO/YOLO export and statistics spend their time in.
        fields = {}
        box = None
        for child in obj:
            if child.tag == "bndbox":
                box = child
            else:
                fields[child.tag] = child.text
        if box is None:
            raise _Bad(f"object {index}: missing <bndbox>")
        objects.append(_object(index, fields, _texts(box), width, height, font))
    return _page(page, size, objects)


# -- the files page_xml writes, read without building a tree ----------------------------------------
# A file laid out byte for byte as page_xml writes it is cut into its element texts by two regular
# expressions and converted directly, ≈ 2× faster than lxml's tree and the checked walk over it.
# Whatever this path is not sure of (other whitespace or order, an entity or character reference, a
# comment, a DOCTYPE, bytes that are not UTF-8 or not XML characters, a field that does not convert
# cleanly) sends the whole file through lxml, which reads it or says precisely what is wrong; both
# give equal records (tests/test_xml_reader.py).
_TEXT = rb"([^<&\x00-\x08\x0b-\x1f]*)"  # no markup, references, or control characters (nor CR: lxml folds it)
_OWN_HEAD = re.compile(
    rb"<\?xml version='1.0' encoding='UTF-8'\?>\n<annotation>\n  <folder>%(t)s</folder>\n  <filename>%(t)s</filename>\n"
    rb"  <size>\n    <width>%(t)s</width>\n    <height>%(t)s</height>\n    <depth>%(t)s</depth>\n  </size>\n"
    rb"  <segmented>%(t)s</segmented>\n  <font>%(t)s</font>\n  <score_id>%(t)s</score_id>\n"
    rb"  <page_number>%(t)s</page_number>\n" % {b"t": _TEXT})
_OWN_OBJECT = re.compile(
    rb"  <object>\n    <name>%(t)s</name>\n    <bndbox>\n      <xmin>%(t)s</xmin>\n      <ymin>%(t)s</ymin>\n"
    rb"      <xmax>%(t)s</xmax>\n      <ymax>%(t)s</ymax>\n    </bndbox>\n    <instance>(\d+)</instance>\n"
    rb"    <glyph>%(t)s</glyph>\n    <font>%(t)s</font>\n    <hidden>([01])</hidden>\n    <occluded>([01])</occluded>\n"
    rb"(?:    <o_bbox>%(t)s</o_bbox>\n)?(?:    <area>(\d+)</area>\n)?(?:    <onset>%(t)s</onset>\n)?"
    rb"(?:    <rel_position>(-?\d+)</rel_position>\n)?  </object>\n" % {b"t": _TEXT})
_OWN_TAIL = b"</annotation>\n"
#: Byte strings an XML parser refuses inside text although the pattern lets them by: the end of a
#: CDATA section, and the UTF-8 of the non-characters U+FFFE and U+FFFF.
_NOT_IN_TEXT = (b"]]>", b"\xef\xbf\xbe", b"\xef\xbf\xbf")
_HEAD_TAGS = ("folder", "filename", "width", "height", "depth", "segmented", "font", "score_id", "page_number")


class _NotOwn(Exception):
    """Internal: the fast path hands the file to lxml."""


def _own_floats(text: bytes, count: int) -> tuple[float, ...]:
    values = tuple(map(float, text.split()))
    if len(values) != count or not all(map(math.isfinite, values)):
        raise _NotOwn
    return values


#: Decoded class, glyph and font names, so that the records of a whole dataset share one string per
#: name instead of three per object (and skip decoding them again). Bounded: text glyphs are
#: named by their character.
_NAMES: dict[bytes, str] = {}
_MAX_NAMES = 1 << 14


def _name(raw: bytes) -> str:
    text = _NAMES.get(raw)
    if text is None:
        text = raw.decode("utf-8").strip()
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[raw] = text
    return text


def _parse_own(data: bytes) -> PageRecord | None:
    """The record of a file in page_xml's exact layout, or None for any other file."""
    head = _OWN_HEAD.match(data)
    if head is None or not data.endswith(_OWN_TAIL) or any(bad in data for bad in _NOT_IN_TEXT):
        return None
    try:
        # As lxml gives them: an empty element's text is None.
        texts = {tag: (value.decode("utf-8") or None) for tag, value in zip(_HEAD_TAGS, head.groups())}
        size = {tag: texts.pop(tag) for tag in ("width", "height", "depth")}
        width, height = _page_size(size)
        page_font = _field(texts, "font", "", "annotation")
        objects = []
        position, end = head.end(), len(data) - len(_OWN_TAIL)
        match = _OWN_OBJECT.match
        while position < end:
            found = match(data, position)
            if found is None:
                return None
            name, x0, y0, x1, y1, instance, glyph, font, hidden, occluded, o_bbox, area, onset, rel_position = found.groups()
            class_name = _name(name)
            if not class_name:
                return None
            o_bbox = o_bbox.strip() if o_bbox is not None else b""
            onset = onset.strip() if onset is not None else b""
            objects.append(ObjectRecord(
                class_name, (round(float(x0) * width), round(float(y0) * height),
                             round(float(x1) * width), round(float(y1) * height)),
                int(instance), _name(glyph), _name(font) if font else page_font,
                hidden == b"1", occluded == b"1", _own_floats(o_bbox, 8) if o_bbox else None,
                int(area) if area is not None else None, _own_floats(onset, 1)[0] if onset else None,
                int(rel_position) if rel_position is not None else None,
            ))
            position = found.end()
        return _page(texts, size, objects) if position == end else None
    except (UnicodeDecodeError, ValueError, OverflowError, _NotOwn, _Bad):
        return None  # lxml reads it, or says what is wrong and where


def read_page_xml(path: str | Path) -> PageRecord:
    """Read one annotation file; a missing, malformed or incomplete file raises ``FormatError`` naming it."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        return _parse(data)
    except etree.XMLSyntaxError as exc:
        raise FormatError(path, f"malformed XML: {exc}") from None
    except _Bad as exc:
        raise FormatError(path, str(exc)) from None
