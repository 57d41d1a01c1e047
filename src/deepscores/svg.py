"""Verovio SVG → a flat list of drawable ink primitives, each with its composed transform and context.

One parse feeds every consumer (image pass, label pass, boxes). Colours in the SVG (MusicXML
colours come through as fill/color attributes) are ignored on purpose: ink is ink.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import skia
from lxml import etree

from deepscores.errors import DeepScoresError
from deepscores.svg_transform import NUMBER, numbers, parse_transform
from deepscores.glyphs import (
    MUSIC_FONTS,
    drawing_font,
    glyph_outline_d,
    glyph_table,
    path_from_d,
    smufl_name,
    text_char_path,
)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True)
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_CSS_RULE_RE = re.compile(r"([^{}]+)\{([^}]*)\}")
# Verovio writes every straight line in one fixed shape (as every glyph placement: svg_transform.py);
# matching it directly avoids the general path parser on the thousands of lines of a dense page.
_LINE_D_RE = re.compile(rf"^\s*M\s*{NUMBER}[\s,]+{NUMBER}\s*L\s*{NUMBER}[\s,]+{NUMBER}\s*$")
_SHAPES = frozenset(("path", "polygon", "polyline", "rect", "ellipse", "circle", "line"))
# Verovio groups that carry (or contain) musical time. Events have an entry in the timemap; the
# containers get their onset from the events inside them; a measure has its own entry.
_EVENTS = frozenset(("note", "rest", "mRest", "multiRest", "mSpace", "space"))
_TIMED = _EVENTS | frozenset(("chord", "beam", "tuplet", "graceGrp", "bTrem", "fTrem", "ligature", "measure"))
_SKIPPED = frozenset(("defs", "style", "desc", "title", "metadata", ""))
# Verovio gives hidden-by-default strokes no width; SVG's default of 1 unit is ~0.09 px at the
# DeepScores geometry: invisible, and in the non-anti-aliased label pass skia would widen it to
# a 1-pixel hairline that is not in the picture. Strokes this thin are not drawn.
_MIN_STROKE_UNITS = 1.0
_CAPS = {"round": skia.Paint.kRound_Cap, "square": skia.Paint.kSquare_Cap, "butt": skia.Paint.kButt_Cap}
_JOINS = {"round": skia.Paint.kRound_Join, "bevel": skia.Paint.kBevel_Join, "miter": skia.Paint.kMiter_Join}
_BUTT, _MITER = skia.Paint.kButt_Cap, skia.Paint.kMiter_Join


@dataclass(slots=True)
class Ink:
    """One drawable piece of ink: a path in local units placed on the page by ``matrix``."""

    path: skia.Path
    local_bounds: skia.Rect  # tight bounds of the fill, local units
    matrix: skia.Matrix      # local units → page pixels
    fill: bool
    stroke_width: float      # local units; 0 = not stroked
    cap: object
    join: object
    dash: tuple[float, ...] | None
    kind: str                # 'use', 'path', 'polygon', 'polyline', 'rect', 'ellipse', 'text'
    glyph: str               # SMuFL name for 'use' and music-font text; 'text:<c>'; else the kind
    font: str                # music font that drew the glyph ('' for shapes, text font for text)
    groups: tuple[str, ...]  # class attributes of the enclosing <g>s, outermost first
    element_id: str          # id of the nearest enclosing element that has one
    clef_line: int | None = None  # staff line of the enclosing clef (Verovio's data-line), if any
    # Ids of the nearest enclosing staff and system groups: a notehead's staff position is read
    # against its staff's lines, and a staff's per-measure line pieces merge within one system.
    staff_id: str = ""
    system_id: str = ""
    #: Ids of the enclosing timed elements (note, rest, chord, beam, tuplet, measure, …), nearest
    #: first: a stem or accidental has its own id, but its onset is its note's (meaning.onset_of).
    timing_ids: tuple[str, ...] = ()

    def page_bounds(self) -> skia.Rect:
        """Tight bounds of the ink on the page, in pixels (strokes included)."""
        if self.stroke_width > 0:
            key = (self.stroke_width, self.cap, self.join, self.dash)
            paint = _BOUNDS_PAINTS.get(key)
            if paint is None:
                paint = _BOUNDS_PAINTS[key] = stroke_paint(self, antialias=True)
            outline = skia.Path()
            paint.getFillPath(self.path, outline)
            rect = outline.computeTightBounds()
            if self.fill:
                rect.join(self.local_bounds)
        else:
            rect = self.local_bounds  # mapRect returns a new rect; the shared bounds stay as they are
        return self.matrix.mapRect(rect)

    @property
    def scale(self) -> float:
        return abs(self.matrix.getScaleX())


@dataclass
class ParsedSvg:
    width_px: int
    height_px: int
    inks: list[Ink]
    #: Page-pixel y of the line centres of each staff group (by its id), top to bottom.
    staff_lines: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: Ids of the notes and rests inside each timed container (chord, beam, tuplet, …): Verovio's
    #: timemap has no entry for a container, so its onset is that of its earliest member.
    members: dict[str, list[str]] = field(default_factory=dict)


#: Stroke paints `Ink.page_bounds` outlines with, one per stroke style: a page has a thousand
#: stroked lines and a handful of styles. Never changed once made.
_BOUNDS_PAINTS: dict[tuple, skia.Paint] = {}


def stroke_paint(ink: Ink, antialias: bool) -> skia.Paint:
    paint = skia.Paint(AntiAlias=antialias, Style=skia.Paint.kStroke_Style, StrokeWidth=ink.stroke_width)
    paint.setStrokeCap(ink.cap)
    paint.setStrokeJoin(ink.join)
    if ink.dash:
        paint.setPathEffect(skia.DashPathEffect.Make(list(ink.dash), 0))
    return paint


def _class_styles(styles_text: list[str]) -> dict[str, dict[str, str]]:
    """``g.<class> {prop: value}`` rules of Verovio's embedded CSS, keyed by class name."""
    styles: dict[str, dict[str, str]] = {}
    for text in styles_text:
        for selectors, body in _CSS_RULE_RE.findall(text):
            decls = dict(
                (k.strip(), v.strip()) for k, _, v in (d.partition(":") for d in body.split(";")) if v.strip()
            )
            for selector in selectors.split(","):
                last = selector.split()[-1] if selector.split() else ""
                if last.startswith("g.") and last.count(".") == 1:
                    styles.setdefault(last[2:], {}).update(decls)
    return styles


@functools.lru_cache(maxsize=4096)
def _glyph_def(codepoint: str, d: str, flip_y: bool, page_font: str) -> tuple[skia.Path, skia.Rect, str, str]:
    """Outline, bounds, SMuFL name and font of one glyph definition (cached: every page of a font
    defines the same glyphs, and telling the font compares outlines)."""
    path, bounds = path_from_d(d, flip_y)
    font = drawing_font(codepoint, d, page_font)
    return path, bounds, smufl_name(codepoint, font), font


class _Walker:
    def __init__(self, page_font: str, styles: dict[str, dict[str, str]]) -> None:
        self.page_font = page_font
        self.styles = styles
        self.defs: dict[str, tuple[skia.Path, skia.Rect, str, str]] = {}
        self.hidden_classes = {c for c, decls in styles.items() if decls.get("visibility") == "hidden"}
        self.tags: dict[str, str] = {}
        #: class attribute of a <g> → (its first class, whether the CSS hides it): a page has a
        #: thousand groups and a few dozen distinct class attributes.
        self.class_info: dict[str, tuple[str, bool]] = {}
        self.inks: list[Ink] = []
        self.staff_lines: dict[str, list[float]] = {}
        # The enclosing staff and system ids of the element being walked (set on the way down).
        self.staff_id = ""
        self.system_id = ""
        self.timing_ids: tuple[str, ...] = ()
        self.members: dict[str, list[str]] = {}

    # -- definitions ------------------------------------------------------------------
    def read_defs(self, defs: etree._Element) -> None:
        for g in defs:
            def_id = g.get("id")
            path_el = next(g.iter("{*}path"), None)
            if not def_id or path_el is None:
                continue
            codepoint = def_id.split("-", 1)[0].upper()
            flip_y = "scale(1,-1)" in (path_el.get("transform") or "")
            self.defs[def_id] = _glyph_def(codepoint, path_el.get("d", ""), flip_y, self.page_font)

    # -- tree walk ----------------------------------------------------------------------
    def walk(self, el: etree._Element, matrix: skia.Matrix, groups: tuple[str, ...], owner: str,
             hidden: bool, line: int | None = None) -> None:
        # The hot loop of a page (a thousand elements): each attribute is read once, with get().
        tags = self.tags
        for child in el:
            raw = child.tag
            tag = tags.get(raw) if isinstance(raw, str) else ""
            if tag is None:
                tag = tags[raw] = raw.rsplit("}", 1)[-1]
            if tag in _SKIPPED:
                continue
            get = child.get
            transform = get("transform")
            if tag == "use":
                if not hidden:
                    self._use(child, matrix, groups, owner, line, transform)
                continue
            local = matrix if transform is None else skia.Matrix.Concat(matrix, parse_transform(transform))
            child_id = get("id")
            child_owner = child_id or owner
            if tag == "g":
                cls = get("class") or ""
                known = self.class_info.get(cls)
                if known is None:
                    known = self.class_info[cls] = (
                        cls.split(" ", 1)[0], bool(self.hidden_classes and not self.hidden_classes.isdisjoint(cls.split())))
                kind, hidden_by_class = known
                if kind == "note" and get("data-grace") is not None:
                    cls = self._grace_note_class(child, cls, groups)
                child_hidden = hidden or get("visibility") == "hidden" or hidden_by_class
                # Only clefs carry data-line (EngraveOptions asks Verovio for clef@line alone).
                data_line = get("data-line") if kind == "clef" else None
                outer = self.staff_id, self.system_id, self.timing_ids
                if kind == "staff":
                    self.staff_id = child_owner
                elif kind == "system":
                    self.system_id = child_owner
                elif kind in _TIMED and child_id:
                    if kind in _EVENTS:
                        for container in self.timing_ids:
                            self.members.setdefault(container, []).append(child_owner)
                    self.timing_ids = (child_owner,) + self.timing_ids
                self.walk(child, local, groups + (cls,) if cls else groups, child_owner, child_hidden,
                          int(data_line) if data_line and data_line.isdigit() else line)
                self.staff_id, self.system_id, self.timing_ids = outer
            elif hidden:
                continue
            elif tag == "text":
                self._text(child, local, groups, child_owner)
            elif tag in _SHAPES:
                self._shape(tag, child, local, groups, child_owner)
            elif tag == "svg":
                self.walk(child, local, groups, child_owner, hidden, line)

    def _grace_note_class(self, note: etree._Element, cls: str, groups: tuple[str, ...]) -> str:
        """The note's class attribute, with the grace-note symbol it draws as a modifier when it is
        one of the four SMuFL grace notes: an unbeamed eighth (one flag), with a slash when
        Verovio's ``data-grace`` says unaccented (acciaccatura). See classes.grace_note_symbol."""
        if any(g.split(" ", 1)[0] == "beam" for g in groups):
            return cls
        flags = [self.defs.get((use.get(_XLINK_HREF) or use.get("href") or "").lstrip("#"))
                 for flag in note.iter("{*}g") if (flag.get("class") or "").split(" ", 1)[0] == "flag"
                 for use in flag.iter("{*}use")]
        names = [entry[2] for entry in flags if entry is not None]
        if names not in (["flag8thUp"], ["flag8thDown"]):
            return cls
        kind = "Acciaccatura" if note.get("data-grace") == "unacc" else "Appoggiatura"
        return f"{cls} graceNote{kind}Stem{names[0][len('flag8th'):]}"

    def _use(self, el, matrix, groups, owner, line, transform) -> None:
        get = el.get
        ref = (get(_XLINK_HREF) or get("href") or "").lstrip("#")
        entry = self.defs.get(ref)
        if entry is None:
            return
        path, bounds, name, font = entry
        m = skia.Matrix.Concat(matrix, parse_transform(transform))
        x, y = get("x"), get("y")
        if x is not None or y is not None:
            m = skia.Matrix.Concat(m, skia.Matrix.Translate(float(x if x is not None else 0),
                                                            float(y if y is not None else 0)))
        self.inks.append(Ink(path, bounds, m, True, 0.0, None, None, None, "use", name, font, groups, owner, line,
                             self.staff_id, self.system_id, self.timing_ids))

    def _shape(self, tag, el, matrix, groups, owner) -> None:
        if tag == "path":
            d = el.get("d") or ""
            line = _LINE_D_RE.match(d)
            if line:
                x0, y0, x1, y1 = map(float, line.groups())
                path = skia.Path()
                path.moveTo(x0, y0)
                path.lineTo(x1, y1)
                bounds = path.computeTightBounds()
                if y0 == y1 and groups and groups[-1] == "staff" and self.staff_id:
                    # Verovio draws a staff's lines as horizontal paths directly inside its group.
                    self.staff_lines.setdefault(self.staff_id, []).append(matrix.mapXY(x0, y0).y())
            elif not d.strip():
                return
            else:
                path, bounds = path_from_d(d)
        else:
            path = skia.Path()
            if tag in ("polygon", "polyline"):
                v = numbers(el.get("points"))
                path.addPoly([skia.Point(v[i], v[i + 1]) for i in range(0, len(v) - 1, 2)], tag == "polygon")
            elif tag == "rect":
                path.addRect(skia.Rect.MakeXYWH(*(float(el.get(k, 0)) for k in ("x", "y", "width", "height"))))
            elif tag == "line":
                path.moveTo(float(el.get("x1", 0)), float(el.get("y1", 0)))
                path.lineTo(float(el.get("x2", 0)), float(el.get("y2", 0)))
            else:
                cx, cy = float(el.get("cx", 0)), float(el.get("cy", 0))
                rx = float(el.get("rx", el.get("r", 0)))
                ry = float(el.get("ry", el.get("r", 0)))
                path.addOval(skia.Rect(cx - rx, cy - ry, cx + rx, cy + ry))
            bounds = path.computeTightBounds()
        get = el.get
        width = float(get("stroke-width", 1) or 1)
        stroke = width if width > _MIN_STROKE_UNITS else 0.0
        fill = get("fill") != "none" and tag != "line"
        # An open two-point path (a staff line, a stem) has no area to fill.
        if fill and tag == "path" and bounds.isEmpty():
            fill = False
        if not fill and not stroke:
            return
        dasharray = get("stroke-dasharray")
        dash = tuple(numbers(dasharray)) or None if dasharray else None
        self.inks.append(Ink(
            path, bounds, matrix, fill, stroke,
            _CAPS.get(get("stroke-linecap", "butt"), _BUTT),
            _JOINS.get(get("stroke-linejoin", "miter"), _MITER),
            dash if dash and len(dash) % 2 == 0 else None,
            tag, tag, "", groups, owner, None, self.staff_id, self.system_id, self.timing_ids))

    # -- text ------------------------------------------------------------------------------
    def _style_flags(self, groups: tuple[str, ...]) -> tuple[bool, bool]:
        bold = italic = False
        for g in groups:
            for c in g.split():
                st = self.styles.get(c, {})
                if "font-weight" in st:
                    bold = st["font-weight"] == "bold"
                if "font-style" in st:
                    italic = st["font-style"] == "italic"
        return bold, italic

    def _text(self, el, matrix, groups, owner) -> None:
        bold, italic = self._style_flags(groups)
        x, y = float(el.get("x", 0)), float(el.get("y", 0))
        state = {"size": numbers(el.get("font-size"))[0] if el.get("font-size") else 0.0,
                 "family": "", "bold": bold, "italic": italic, "anchor": el.get("text-anchor", "start")}
        chunks: list[list] = [[el.get("text-anchor", "start"), []]]
        pen = [x, y]
        self._text_runs(el, state, pen, chunks, owner)
        for anchor, pieces in chunks:
            if not pieces:
                continue
            width = pieces[-1][1] - pieces[0][1] + pieces[-1][5]
            shift = -width if anchor == "end" else -width / 2 if anchor == "middle" else 0.0
            for path, px, py, scale, bounds, _adv, glyph, font, owner_id in pieces:
                m = skia.Matrix.Concat(matrix, skia.Matrix.Translate(px + shift, py))
                m = skia.Matrix.Concat(m, skia.Matrix.Scale(scale, scale))
                self.inks.append(Ink(path, bounds, m, True, 0.0, None, None, None, "text", glyph, font,
                                     groups, owner_id, None, self.staff_id, self.system_id, self.timing_ids))

    def _text_runs(self, el, state, pen, chunks, owner) -> None:
        st = dict(state)
        if el.get("font-size"):
            st["size"] = (numbers(el.get("font-size")) or [st["size"]])[0]
        if el.get("font-family"):
            st["family"] = el.get("font-family").split(",")[0].strip().strip("'\"")
        if el.get("font-weight"):
            st["bold"] = el.get("font-weight") == "bold"
        if el.get("font-style"):
            st["italic"] = el.get("font-style") == "italic"
        if el.get("x") is not None or el.get("y") is not None:
            if el.tag.endswith("tspan"):
                pen[0] = float(el.get("x", pen[0]))
                pen[1] = float(el.get("y", pen[1]))
                chunks.append([el.get("text-anchor", st["anchor"]), []])
        pen[0] += sum(numbers(el.get("dx")))
        pen[1] += sum(numbers(el.get("dy")))
        owner = el.get("id") or owner
        self._emit_chars(el.text, st, pen, chunks, owner)
        for child in el:
            if isinstance(child.tag, str) and child.tag.endswith("tspan"):
                self._text_runs(child, st, pen, chunks, owner)
            self._emit_chars(child.tail, st, pen, chunks, owner)

    def _emit_chars(self, text: str | None, st, pen, chunks, owner) -> None:
        if not text or not text.strip() or st["size"] <= 0:
            return
        text = " ".join(text.split()) if "\n" in text else text
        scale = st["size"] / 1000.0
        music_font = st["family"] if st["family"] in MUSIC_FONTS else ""
        for char in text:
            if music_font:
                codepoint = f"{ord(char):04X}"
                d = glyph_outline_d(music_font, codepoint)
                info = glyph_table(music_font).get(codepoint)
                if d is None or info is None:
                    continue
                path, bounds = path_from_d(d, True)
                glyph, font, advance = info.name, music_font, info.advance
            else:
                path, bounds, advance = text_char_path(char, st["bold"], st["italic"])
                glyph, font = f"text:{char}", "DejaVuSerif"
            if not char.isspace():
                chunks[-1][1].append((path, pen[0], pen[1], scale, bounds, advance * scale, glyph, font, owner))
            pen[0] += advance * scale


def parse_svg(svg: str | bytes, width_px: int, height_px: int, page_font: str) -> ParsedSvg:
    """Parse one Verovio SVG page into ink primitives placed in a ``width_px`` × ``height_px`` page."""
    data = svg.encode("utf-8") if isinstance(svg, str) else svg
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise DeepScoresError(f"SVG page: not well-formed XML ({exc})") from exc
    inner = next((el for el in root.iter("{*}svg") if el.get("viewBox")), None)
    if inner is None:
        raise DeepScoresError("SVG page: no viewBox; not a Verovio page")
    vb = numbers(inner.get("viewBox"))
    scale = width_px / vb[2]
    # One scan of the tree finds both (a wildcard-namespace scan costs as much as the CSS itself).
    styles, defs_elements = [], []
    for el in root.iter("{*}style", "{*}defs"):
        if el.tag.endswith("style"):
            styles.append(el.text or "")
        else:
            defs_elements.append(el)
    walker = _Walker(page_font, _class_styles(styles))
    for defs in defs_elements:
        walker.read_defs(defs)
    base = skia.Matrix.Concat(skia.Matrix.Scale(scale, scale), skia.Matrix.Translate(-vb[0], -vb[1]))
    walker.walk(inner, base, (), "", False)
    staff_lines = {staff: tuple(sorted(ys)) for staff, ys in walker.staff_lines.items()}
    return ParsedSvg(width_px, height_px, walker.inks, staff_lines, walker.members)
