"""The label pass's encodings are exact: every instance id through the R8G8 surface, every class id
through the A8 mask, and the two maps agree pixel for pixel."""

from __future__ import annotations

import numpy as np
import skia

from deepscores.raster import MAX_INSTANCES, get_backend
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
    instance_map, class_mask = get_backend().render_labels(ParsedSvg(side, side, inks), labelled, class_ids)
    expected = np.arange(1, side * side + 1, dtype=np.int64)
    expected[-1] = 0  # 65,535 instances leave the last pixel as background
    assert np.array_equal(instance_map.ravel().astype(np.int64), expected)
    lut = np.array(class_ids, np.uint8)
    lut[0] = 255  # background (id 0 in the instance map) is 255 in the class mask
    assert np.array_equal(class_mask, lut[instance_map])
