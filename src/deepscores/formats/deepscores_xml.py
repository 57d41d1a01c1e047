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
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from deepscores.formats import FormatError
from deepscores.formats.atomic import atomic_write_bytes
from deepscores.page import Page

#: The folder, relative to the dataset root, that ``<filename>`` lives in.
IMAGE_FOLDER = "images_png"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


def _text(parent: etree._Element, tag: str, default: str | None = None) -> str:
    return _field(_texts(parent), tag, default, parent.tag)


def _int(parent: etree._Element, tag: str, default: str | None = None) -> int:
    return _int_field(_texts(parent), tag, default, parent.tag)


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


def _parse(data: bytes) -> PageRecord:
    # No entities, no DTD, no network: the file may come from anywhere.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(data, parser)
    if root.tag != "annotation":
        raise _Bad(f"root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    if size is None:
        raise _Bad("missing <size>")
    width, height = _int(size, "width"), _int(size, "height")
    if width <= 0 or height <= 0:
        raise _Bad(f"page size {width}x{height} is empty")
    font = _text(root, "font", "")
    objects = []
    for index, obj in enumerate(root.iterfind("object"), start=1):
        try:
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
                raise _Bad("missing <bndbox>")
            edges = _texts(box)
            bbox = (_edge_text(edges, "xmin", width), _edge_text(edges, "ymin", height),
                    _edge_text(edges, "xmax", width), _edge_text(edges, "ymax", height))
            objects.append(ObjectRecord(
                class_name=_field(fields, "name"), bbox_xyxy=bbox,
                instance_id=_int_field(fields, "instance", str(index)),
                glyph=_field(fields, "glyph", ""), font=_field(fields, "font", font),
                hidden=_flag_field(fields, "hidden"), occluded=_flag_field(fields, "occluded"),
                o_bbox=_optional_floats(fields, "o_bbox", 8), area_px=_optional_int(fields, "area"),
                onset=(onset[0] if (onset := _optional_floats(fields, "onset", 1)) else None),
                rel_position=_optional_int(fields, "rel_position"),
            ))
        except _Bad as exc:
            raise _Bad(f"object {index}: {exc}") from None
    return PageRecord(
        filename=_text(root, "filename"), width=width, height=height, depth=_int(size, "depth", "1"),
        font=font, score_id=_text(root, "score_id", ""), page_number=_int(root, "page_number", "0"), objects=objects,
    )


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
