"""The label pass's encodings are exact: every instance id through the R8G8 surface; the class mask
is the instance map looked up through the classes, and equals a mask drawn with the same geometry."""

from __future__ import annotations

import numpy as np
import skia

from deepscores.raster import MAX_INSTANCES, class_mask_of, get_backend
from deepscores.svg import Ink, ParsedSvg


def _pixel(x: int, y: int) -> Ink:
    path = skia.Path()
    path.addRect(skia.Rect(0.1, 0.1, 0.9, 0.9))  # inside one pixel: the hairline stays in it too
    return Ink(path, path.computeTightBounds(), skia.Matrix.Translate(x, y), True, 0.0, None, None, None,
               "rect", "rect", "", (), "")


def test_every_instance_id_and_class_id_survives_the_label_pass():
    side = 256
    inks = [_pixel(i % side, i // side) for i in range(MAX_INSTANCES)]
    labelled = [(ink, i + 1) for i, ink in enumerate(inks)]
    class_ids = [0] + [(i % 254) + 1 for i in range(MAX_INSTANCES)]
    instance_map = get_backend().render_instances(ParsedSvg(side, side, inks), labelled)
    class_mask = class_mask_of(instance_map, class_ids)
    expected = np.arange(1, side * side + 1, dtype=np.int64)
    expected[-1] = 0  # 65,535 instances leave the last pixel as background
    assert np.array_equal(instance_map.ravel().astype(np.int64), expected)
    lut = np.array(class_ids, np.uint8)
    lut[0] = 255  # background (id 0 in the instance map) is 255 in the class mask
    assert np.array_equal(class_mask, lut[instance_map])


def _fresh_paints_reference(parsed: ParsedSvg, labelled, class_ids):
    """The passes as they were drawn before paints were reused: every paint made new, every matrix set."""
    from deepscores.svg import stroke_paint

    def draw(canvas, ink, fill, antialias, color, blend=skia.BlendMode.kSrcOver):
        canvas.setMatrix(ink.matrix)
        if ink.fill:
            canvas.drawPath(ink.path, fill)
            if color is not None:
                canvas.drawPath(ink.path, skia.Paint(AntiAlias=False, Color=color, Style=skia.Paint.kStroke_Style,
                                                     StrokeWidth=0, BlendMode=blend))
        if ink.stroke_width > 0:
            paint = stroke_paint(ink, antialias)
            if color is not None:
                paint.setColor(color)
                paint.setBlendMode(blend)
            canvas.drawPath(ink.path, paint)

    h, w = parsed.height_px, parsed.width_px
    coverage = np.zeros((h, w), np.uint8)
    image_surface = skia.Surface.MakeRasterDirect(skia.ImageInfo.MakeA8(w, h), coverage)
    for ink in parsed.inks:
        draw(image_surface.getCanvas(), ink, skia.Paint(AntiAlias=True), True, None)
    instance_map = np.zeros((h, w), np.uint16)
    info = skia.ImageInfo.Make(w, h, skia.ColorType.kR8G8_unorm_ColorType, skia.AlphaType.kOpaque_AlphaType)
    surface = skia.Surface.MakeRasterDirect(info, instance_map)
    class_mask = np.full((h, w), 255, np.uint8)
    mask_surface = skia.Surface.MakeRasterDirect(skia.ImageInfo.MakeA8(w, h), class_mask)
    for ink, instance_id in labelled:
        color = skia.Color(instance_id & 0xFF, instance_id >> 8, 0)
        draw(surface.getCanvas(), ink, skia.Paint(AntiAlias=False, Color=color), False, color)
        alpha = skia.ColorSetARGB(class_ids[instance_id], 0, 0, 0)
        draw(mask_surface.getCanvas(), ink, skia.Paint(AntiAlias=False, Color=alpha, BlendMode=skia.BlendMode.kSrc),
             False, alpha, skia.BlendMode.kSrc)
    del image_surface, surface, mask_surface
    return np.subtract(255, coverage, dtype=np.uint8), instance_map, class_mask


def test_reused_paints_draw_what_fresh_paints_draw():
    """The passes reuse paints and skip repeated matrices; a real page (stems, staff lines, dashed
    and round-capped strokes, glyphs, text) must come out as with a fresh paint per ink."""
    import music21

    from deepscores.annotate import collect_instances
    from deepscores.corpus import load_score
    from deepscores.engrave import EngraveOptions, engrave
    from deepscores.svg import parse_svg

    page = engrave(load_score(music21.corpus.getWork("joplin/maple_leaf_rag.mxl")), EngraveOptions(font="Bravura"))[0]
    parsed = parse_svg(page.svg, page.width_px, page.height_px, page.font)
    instances, _ = collect_instances(parsed)
    labelled = [(ink, i) for i, inst in enumerate(instances, start=1) for ink in inst.inks]
    class_ids = [0] + [(i * 7) % 250 for i in range(1, len(instances) + 1)]
    assert len(labelled) > 500 and any(ink.stroke_width > 0 for ink, _ in labelled)
    backend = get_backend()
    image = backend.render_image(parsed)
    instance_map = backend.render_instances(parsed, labelled)
    class_mask = class_mask_of(instance_map, class_ids)
    want_image, want_instances, want_mask = _fresh_paints_reference(parsed, labelled, class_ids)
    assert np.array_equal(image, want_image)
    assert np.array_equal(instance_map, want_instances)
    assert np.array_equal(class_mask, want_mask)
