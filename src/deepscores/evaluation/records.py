"""The in-memory ground truth and detections the evaluator scores: one columnar record each.

Columns (numpy arrays, one row per box) rather than lists of objects: a test split holds millions
of symbols and every protocol works on whole columns. ``GroundTruthBox`` / ``Detection`` and the
``from_boxes`` constructors are the readable way in for small, hand-made cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GroundTruthBox:
    """One true symbol: class, aligned box ``[x0, y0, x1, y1]`` in px, optional oriented corners."""

    image_id: int
    class_id: int
    bbox_xyxy: Sequence[float]
    corners: Sequence[float] | None = None  # [x0, y0, ..., x3, y3]; None = the aligned box's corners
    ignore: bool = False  # COCO's crowd/ignore: matching it is neither a hit nor a false positive


@dataclass(frozen=True)
class Detection:
    """One predicted symbol: a ``GroundTruthBox`` with a confidence score."""

    image_id: int
    class_id: int
    bbox_xyxy: Sequence[float]
    score: float
    corners: Sequence[float] | None = None


def corners_of_xyxy(bbox_xyxy: np.ndarray) -> np.ndarray:
    """The (n, 4, 2) corners of aligned boxes, clockwise in image coordinates from the top left."""
    x0, y0, x1, y1 = (bbox_xyxy[:, i] for i in range(4))
    return np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1),
                     np.stack([x1, y1], 1), np.stack([x0, y1], 1)], axis=1)


def _columns(boxes: Sequence[GroundTruthBox | Detection]) -> dict[str, np.ndarray]:
    n = len(boxes)
    bbox = np.array([b.bbox_xyxy for b in boxes], dtype=np.float64).reshape(n, 4)
    corners = corners_of_xyxy(bbox)
    for i, b in enumerate(boxes):
        if b.corners is not None:
            corners[i] = np.asarray(b.corners, dtype=np.float64).reshape(4, 2)
    return {
        "image_ids": np.array([b.image_id for b in boxes], dtype=np.int64),
        "class_ids": np.array([b.class_id for b in boxes], dtype=np.int64),
        "bbox_xyxy": bbox,
        "corners": corners,
    }


@dataclass(frozen=True)
class GroundTruth:
    """All true boxes of a split, the split's image ids and the class table (id → name).

    ``image_ids`` of the split are kept apart from the boxes because a page may have no symbol of a
    class, or none at all, and still be scored (its detections are false positives).
    """

    image_ids: np.ndarray  # (n,) int64: the image of each box
    class_ids: np.ndarray  # (n,) int64
    bbox_xyxy: np.ndarray  # (n, 4) float64, pixel edges
    corners: np.ndarray  # (n, 4, 2) float64: the oriented box (the aligned one where none is given)
    ignore: np.ndarray  # (n,) bool
    images: tuple[int, ...]  # every image of the split, sorted
    class_names: Mapping[int, str] = field(default_factory=dict)
    source: str = "<memory>"  # the file it came from, for error messages

    def __len__(self) -> int:
        return len(self.class_ids)

    def subset(self, images: Iterable[int]) -> GroundTruth:
        """The boxes of these images only (each kept even when it has no box), same class table."""
        wanted = tuple(sorted(set(images)))
        keep = np.isin(self.image_ids, wanted)
        return GroundTruth(self.image_ids[keep], self.class_ids[keep], self.bbox_xyxy[keep], self.corners[keep],
                           self.ignore[keep], wanted, self.class_names, self.source)

    @classmethod
    def from_boxes(cls, boxes: Iterable[GroundTruthBox], images: Iterable[int] | None = None,
                   class_names: Mapping[int, str] | None = None) -> GroundTruth:
        """Ground truth from box records; ``images`` defaults to the images the boxes are on."""
        boxes = list(boxes)
        cols = _columns(boxes)
        image_set = set(cols["image_ids"].tolist()) if images is None else set(images)
        names = dict(class_names) if class_names is not None else {c: str(c) for c in sorted(set(cols["class_ids"].tolist()))}
        return cls(ignore=np.array([b.ignore for b in boxes], dtype=bool).reshape(len(boxes)),
                   images=tuple(sorted(image_set)), class_names=names, **cols)


@dataclass(frozen=True)
class Detections:
    """All predicted boxes of a split, in the order they were given (ties in score keep it)."""

    image_ids: np.ndarray
    class_ids: np.ndarray
    bbox_xyxy: np.ndarray
    corners: np.ndarray
    scores: np.ndarray  # (n,) float64
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def from_boxes(cls, boxes: Iterable[Detection]) -> Detections:
        boxes = list(boxes)
        return cls(scores=np.array([b.score for b in boxes], dtype=np.float64).reshape(len(boxes)), **_columns(boxes))

    def take(self, index: np.ndarray) -> Detections:
        """The detections at ``index`` (a boolean mask or integer positions), in that order."""
        return Detections(self.image_ids[index], self.class_ids[index], self.bbox_xyxy[index],
                          self.corners[index], self.scores[index], self.source)
