"""`show`: one page of a dataset as a Figure-2-style PNG: (a) a snippet of the page, (b) its boxes coloured
by class with a legend, optionally (e) predicted boxes beside them, (c) its class mask, (d) patches of one class.

Panels are composed as pixel arrays at the page's own scale (1 page pixel = 1 output pixel), never
resampled, so a box outline lands exactly on the box's pixel edges and the mask keeps its exact
colours; only the titles and the legend are drawn as text. Panels are stacked top to bottom;
`render_show` returns the canvas together with where each panel sits (`ShowLayout`).
"""

from __future__ import annotations

import colorsys
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deepscores.classes import Catalogue, dataset_catalogue
from deepscores.errors import DeepScoresError, OptionsError
from deepscores.formats.atomic import atomic_write_bytes
from deepscores.formats.deepscores_xml import PageRecord, read_page_xml
from deepscores.formats.patches import PATCH_FOLDER, PATCH_SIZE
from deepscores.formats.pngio import read_png
from deepscores.page import BACKGROUND_CLASS
from deepscores.show_predictions import load_predictions

#: Size (width, height) of the default snippet: the window of this size holding most box centres.
DEFAULT_CROP_PX = (960, 480)
_CELL_PX = 16  # grid on which the default window is searched
MARGIN_PX = 10
TITLE_PX = 24
OUTLINE_PX = 2
PATCH_ROWS = 2
_PATCH_GAP_PX = 6
UNKNOWN_CLASS_COLOUR = (128, 128, 128)


# -- colours ----------------------------------------------------------------------------------------
def _palette() -> np.ndarray:
    table = np.zeros((256, 3), np.uint8)
    for class_id in range(256):
        # Golden-ratio hue steps spread neighbouring ids around the wheel; three saturation/value
        # levels separate ids whose hues come close. Never white, never grey: the page is both.
        hue = (class_id * 0.618033988749895) % 1.0
        saturation = (0.95, 0.7, 0.85)[class_id % 3]
        value = (0.85, 0.65, 0.95)[(class_id // 3) % 3]
        table[class_id] = [round(c * 255) for c in colorsys.hsv_to_rgb(hue, saturation, value)]
    table[BACKGROUND_CLASS] = (255, 255, 255)
    return table


_PALETTE = _palette()


def class_colour(class_id: int) -> tuple[int, int, int]:
    """The fixed colour of a class id (1..254) in boxes and masks; background (255) is white."""
    if not 0 <= class_id <= 255:
        raise DeepScoresError(f"class id {class_id} is outside 0..255")
    r, g, b = _PALETTE[class_id]
    return int(r), int(g), int(b)


# -- choosing the page and the snippet ----------------------------------------------------------------
def page_names(dataset_dir: str | Path) -> list[str]:
    """Sorted names of the pages that have an annotation file."""
    folder = Path(dataset_dir) / "xml_annotations"
    if not folder.is_dir():
        raise DeepScoresError(f"{folder}: no such folder (not a deepscores dataset)")
    with os.scandir(folder) as entries:
        return sorted(e.name[:-4] for e in entries if e.name.endswith(".xml") and not e.name.startswith("."))


def resolve_page(dataset_dir: str | Path, page: str | int) -> str:
    """A page name, or an index (int or digits) into the sorted page names."""
    names = page_names(dataset_dir)
    text = str(page)
    if text in names:
        return text
    if text.lstrip("-").isdigit() and -len(names) <= int(text) < len(names):
        return names[int(text)]
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    raise DeepScoresError(f"{Path(dataset_dir)}: no page {text!r} ({len(names)} pages: {shown or 'none'}; "
                          f"or an index 0..{len(names) - 1})")


def default_crop(record: PageRecord) -> tuple[int, int, int, int]:
    """The DEFAULT_CROP_PX window (x, y, w, h) holding the most box centres; the top-most, then left-most wins."""
    width, height = min(DEFAULT_CROP_PX[0], record.width), min(DEFAULT_CROP_PX[1], record.height)
    if not record.objects:
        return 0, 0, width, height
    boxes = np.array([o.bbox_xyxy for o in record.objects], dtype=np.int64)
    cx = np.clip((boxes[:, 0] + boxes[:, 2]) // 2 // _CELL_PX, 0, None)
    cy = np.clip((boxes[:, 1] + boxes[:, 3]) // 2 // _CELL_PX, 0, None)
    cells_y, cells_x = -(-record.height // _CELL_PX), -(-record.width // _CELL_PX)
    grid = np.zeros((cells_y + 1, cells_x + 1), np.int64)
    np.add.at(grid, (np.minimum(cy, cells_y - 1) + 1, np.minimum(cx, cells_x - 1) + 1), 1)
    total = grid.cumsum(0).cumsum(1)  # summed-area table, padded by one row and column of zeros
    win_y, win_x = min(height // _CELL_PX, cells_y), min(width // _CELL_PX, cells_x)
    sums = total[win_y:, win_x:] - total[:-win_y, win_x:] - total[win_y:, :-win_x] + total[:-win_y, :-win_x]
    gy, gx = np.unravel_index(int(np.argmax(sums)), sums.shape)
    x, y = min(int(gx) * _CELL_PX, record.width - width), min(int(gy) * _CELL_PX, record.height - height)
    return x, y, width, height


def _check_crop(crop: tuple[int, int, int, int], record: PageRecord) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in crop)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, record.width), min(y + h, record.height)
    if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
        raise OptionsError(f"crop {x},{y},{w},{h} is empty or outside the {record.width}x{record.height} page")
    return x0, y0, x1 - x0, y1 - y0


# -- drawing ------------------------------------------------------------------------------------------
def draw_box(rgb: np.ndarray, bbox_xyxy: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
    """A 2-px outline centred on the box's pixel edges: one pixel each side of every edge (column
    ``x0 - 1`` and ``x0``, ``x1 - 1`` and ``x1``; the same for rows), clipped to the array."""
    x0, y0, x1, y1 = bbox_xyxy
    height, width = rgb.shape[:2]
    ys, ye = max(y0 - 1, 0), min(y1 + 1, height)
    xs, xe = max(x0 - 1, 0), min(x1 + 1, width)
    if ys >= ye or xs >= xe:
        return
    for col in (x0 - 1, x0, x1 - 1, x1):
        if 0 <= col < width:
            rgb[ys:ye, col] = colour
    for row in (y0 - 1, y0, y1 - 1, y1):
        if 0 <= row < height:
            rgb[row, xs:xe] = colour


def draw_oriented_box(rgb: np.ndarray, o_bbox: tuple[float, ...], colour: tuple[int, int, int]) -> None:
    """A 2-px closed outline through the four corners ``(x0, y0, …, x3, y3)`` (pixel-edge
    coordinates, like `draw_box`), clipped to the array; drawn in place."""
    # Pillow rasterises slanted lines; a pixel centre sits at +0.5 of its edges, so the outline is
    # drawn through the corners shifted by -0.5 to land on the same pixels as draw_box's edges.
    corners = [(float(o_bbox[i]) - 0.5, float(o_bbox[i + 1]) - 0.5) for i in range(0, 8, 2)]
    canvas = Image.fromarray(rgb)
    ImageDraw.Draw(canvas).line([*corners, corners[0]], fill=tuple(colour), width=2, joint="curve")
    rgb[...] = np.asarray(canvas)


def _shift_polygon(o_bbox: tuple[float, ...], crop: tuple[int, int, int, int]) -> tuple[float, ...]:
    x, y = crop[0], crop[1]
    return tuple(v - (x if i % 2 == 0 else y) for i, v in enumerate(o_bbox))


def _grey_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2)


def _font(size: int) -> ImageFont.ImageFont:
    import matplotlib  # only for the path of the DejaVu Sans it ships; no plotting here

    try:
        return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), size)
    except OSError:
        return ImageFont.load_default()


@dataclass(frozen=True)
class ShowLayout:
    """Where things are: ``crop`` (x, y, w, h) on the page; ``panels`` name → (left, top, w, h) in the PNG."""

    page: str
    crop: tuple[int, int, int, int]
    class_name: str | None
    classes_shown: tuple[str, ...]
    panels: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    predictions_drawn: int = 0


class _Canvas:
    """Panels stacked top to bottom, each under a title line."""

    def __init__(self, width: int) -> None:
        self.width, self.parts, self.texts, self.y = width, [], [], MARGIN_PX
        self.panels: dict[str, tuple[int, int, int, int]] = {}

    def title(self, text: str) -> None:
        self.texts.append((MARGIN_PX, self.y + 4, text, (0, 0, 0), 14))
        self.y += TITLE_PX

    def add(self, name: str, rgb: np.ndarray) -> None:
        self.parts.append((MARGIN_PX, self.y, rgb))
        self.panels[name] = (MARGIN_PX, self.y, rgb.shape[1], rgb.shape[0])
        self.y += rgb.shape[0] + MARGIN_PX

    def legend(self, entries: list[tuple[str, tuple[int, int, int]]]) -> None:
        x, top, line = MARGIN_PX, self.y, 18
        row_y = top
        font = _font(12)
        for name, colour in entries:
            item_w = 16 + int(font.getlength(name)) + 14
            if x + item_w > self.width - MARGIN_PX and x > MARGIN_PX:
                x, row_y = MARGIN_PX, row_y + line
            swatch = np.empty((12, 12, 3), np.uint8)
            swatch[:] = colour
            self.parts.append((x, row_y + 2, swatch))
            self.texts.append((x + 16, row_y, name, (0, 0, 0), 12))
            x += item_w
        height = (row_y - top + line) if entries else 0
        self.panels["legend"] = (MARGIN_PX, top, self.width - 2 * MARGIN_PX, height)
        self.y += height + MARGIN_PX

    def render(self) -> np.ndarray:
        canvas = np.full((self.y, self.width, 3), 255, np.uint8)
        for left, top, rgb in self.parts:
            canvas[top:top + rgb.shape[0], left:left + rgb.shape[1]] = rgb
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        for left, top, text, colour, size in self.texts:
            draw.text((left, top), text, fill=colour, font=_font(size))
        return np.asarray(image).copy()


# -- the panels ---------------------------------------------------------------------------------------
def _colour_of(catalogue: Catalogue, class_name: str) -> tuple[int, int, int]:
    return class_colour(catalogue.id_of(class_name)) if class_name in catalogue else UNKNOWN_CLASS_COLOUR


def _shift(bbox: tuple[int, int, int, int], crop: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y = crop[0], crop[1]
    return bbox[0] - x, bbox[1] - y, bbox[2] - x, bbox[3] - y


def _intersects(bbox: tuple[int, int, int, int], crop: tuple[int, int, int, int]) -> bool:
    x, y, w, h = crop
    return bbox[0] < x + w and bbox[2] > x and bbox[1] < y + h and bbox[3] > y


def _patch_files(root: Path, class_name: str, page: str, limit: int) -> list[Path]:
    """Patches of the class, this page's first (then by name), at most ``limit``."""
    folder = root / PATCH_FOLDER / class_name
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.png"), key=lambda p: (not p.name.startswith(f"{page}_"), p.name))
    return files[:limit]


def _patch_columns(width: int) -> int:
    return max(1, (width + _PATCH_GAP_PX) // (PATCH_SIZE[1] + _PATCH_GAP_PX))


def _patch_grid(files: list[Path], width: int) -> np.ndarray:
    patch_h, patch_w = PATCH_SIZE
    gap = _PATCH_GAP_PX
    columns = _patch_columns(width)
    rows = -(-len(files) // columns)
    # One spare pixel round the grid so that every patch's frame lies outside the patch.
    grid = np.full((rows * (patch_h + gap) - gap + 2, min(len(files), columns) * (patch_w + gap) - gap + 2, 3), 255, np.uint8)
    for i, path in enumerate(files):
        patch = read_png(path)
        if patch.dtype != np.uint8:
            raise DeepScoresError(f"{path}: expected an 8-bit patch, found {patch.dtype}")
        top, left = (i // columns) * (patch_h + gap) + 1, (i % columns) * (patch_w + gap) + 1
        h, w = min(patch.shape[0], patch_h), min(patch.shape[1], patch_w)
        grid[top:top + h, left:left + w] = _grey_rgb(patch[:h, :w])
        # A light frame in the gap: patches are mostly white paper and would run into each other.
        frame = grid[top - 1:top + h + 1, left - 1:left + w + 1]
        frame[[0, -1], :] = 200
        frame[:, [0, -1]] = 200
    return grid


def render_show(dataset_dir: str | Path, page: str | int, crop: tuple[int, int, int, int] | None = None,
                class_name: str | None = None, predictions: str | Path | None = None,
                score_threshold: float = 0.5, clean: str | Path | None = None) -> tuple[np.ndarray, ShowLayout]:
    """The figure of `show_page` as an RGB uint8 array, and where its panels are."""
    root = Path(dataset_dir)
    name = resolve_page(root, page)
    catalogue = dataset_catalogue(root)
    record = read_page_xml(root / "xml_annotations" / f"{name}.xml")
    image = read_png(root / "images_png" / f"{name}.png")
    mask = read_png(root / "pix_annotations_png" / f"{name}.png")
    for path, array in ((root / "images_png" / f"{name}.png", image), (root / "pix_annotations_png" / f"{name}.png", mask)):
        if array.dtype != np.uint8 or array.shape != (record.height, record.width):
            raise DeepScoresError(f"{path}: expected uint8 {record.width}x{record.height}, found "
                                  f"{array.dtype} {array.shape[1]}x{array.shape[0]}")
    crop = default_crop(record) if crop is None else _check_crop(crop, record)
    x, y, w, h = crop
    counts = Counter(o.class_name for o in record.objects)
    if class_name is None:
        class_name = min(counts, key=lambda n: (-counts[n], n)) if counts else None
    elif class_name not in catalogue:
        raise DeepScoresError(f"vocabulary {catalogue.name!r}: no class named {class_name!r}")

    snippet = _grey_rgb(image[y:y + h, x:x + w])
    boxed = snippet.copy()
    shown = [o for o in record.objects if _intersects(o.bbox_xyxy, crop)]
    for obj in shown:  # file order: a later symbol's outline lies over an earlier one's, as its ink does
        # An oriented box, where the page has one, shows a slanted beam or slur as it lies.
        if obj.o_bbox is not None:
            draw_oriented_box(boxed, _shift_polygon(obj.o_bbox, crop), _colour_of(catalogue, obj.class_name))
        else:
            draw_box(boxed, _shift(obj.bbox_xyxy, crop), _colour_of(catalogue, obj.class_name))
    classes_shown = sorted({o.class_name for o in shown},
                           key=lambda n: (catalogue.id_of(n) if n in catalogue else 10_000, n))
    degraded = _is_degraded(root)
    width = max(2 * w + MARGIN_PX if degraded else w, 480) + 2 * MARGIN_PX
    canvas = _Canvas(width)
    canvas.title(f"(a) {name}: snippet x={x} y={y} w={w} h={h} of {record.width}x{record.height}")
    canvas.add("snippet", snippet)
    canvas.title(f"(b) ground-truth boxes: {len(shown)} symbols, {len(classes_shown)} classes")
    canvas.add("boxes", boxed)
    canvas.legend([(n, _colour_of(catalogue, n)) for n in classes_shown])
    if degraded:
        _side_by_side(canvas, root, name, crop, boxed, catalogue, clean)
    drawn = 0
    if predictions is not None:
        predicted, total = load_predictions(root, name, predictions, score_threshold)
        panel = snippet.copy()
        for category_id, bbox, _ in sorted(predicted, key=lambda p: p[2]):  # best last, on top
            if _intersects(bbox, crop):
                colour = class_colour(category_id) if 1 <= category_id <= 254 else UNKNOWN_CLASS_COLOUR
                draw_box(panel, _shift(bbox, crop), colour)
                drawn += 1
        canvas.title(f"(e) predictions with score >= {score_threshold:g}: {drawn} in the snippet "
                     f"({len(predicted)} of {total} on the page)")
        canvas.add("predictions", panel)
    canvas.title("(c) class mask (white: background)")
    canvas.add("mask", _PALETTE[mask[y:y + h, x:x + w]])
    if class_name is not None:
        files = _patch_files(root, class_name, name, PATCH_ROWS * _patch_columns(width - 2 * MARGIN_PX))
        canvas.title(f"(d) classification patches of {class_name}: {len(files)} from {PATCH_FOLDER}/{class_name}/"
                     if files else f"(d) no classification patches in {PATCH_FOLDER}/{class_name}/")
        if files:
            canvas.add("patches", _patch_grid(files, width - 2 * MARGIN_PX))
    layout = ShowLayout(name, crop, class_name, tuple(classes_shown), dict(canvas.panels), drawn)
    return canvas.render(), layout


def _is_degraded(root: Path) -> bool:
    try:
        return "degrade" in json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _side_by_side(canvas: _Canvas, root: Path, name: str, crop: tuple[int, int, int, int], boxed: np.ndarray,
                  catalogue: Catalogue, clean: str | Path | None) -> None:
    """(f) the clean page (its own boxes) beside the degraded one (boxes recomputed after the warp)."""
    from deepscores.degrade.dataset import clean_page

    page = clean_page(root, name, clean)
    x, y, w, h = crop
    left = _grey_rgb(page.image[y:y + h, x:x + w])
    for symbol in page.symbols:
        if _intersects(symbol.bbox_xyxy, crop):
            draw_box(left, _shift(symbol.bbox_xyxy, crop), _colour_of(catalogue, symbol.class_name))
    both = np.full((h, 2 * w + MARGIN_PX, 3), 255, np.uint8)
    both[:, :w], both[:, w + MARGIN_PX:] = left, boxed
    canvas.title("(f) clean page | degraded page, each with its own boxes (same window)")
    canvas.add("side_by_side", both)


def show_page(dataset_dir: str | Path, page: str | int, out_file: str | Path,
              crop: tuple[int, int, int, int] | None = None, class_name: str | None = None,
              predictions: str | Path | None = None, score_threshold: float = 0.5,
              clean: str | Path | None = None) -> Path:
    """Write the Figure-2-style PNG of one page (see the module doc) to ``out_file``; returns its path.

    ``page``: a page name or an index into the sorted page names. ``crop``: (x, y, w, h) on the page;
    default: the DEFAULT_CROP_PX window holding the most box centres. ``class_name``: the class of
    the patch panel; default the page's most frequent class. ``predictions``: a COCO results JSON
    whose boxes (score ≥ ``score_threshold``) are drawn in an extra panel.
    """
    rgb, _ = render_show(dataset_dir, page, crop, class_name, predictions, score_threshold, clean)
    import io

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=6)
    out = Path(out_file)
    atomic_write_bytes(out, buffer.getvalue())
    return out
