"""Pages with their boxes as PyTorch data for the detectors: a split's pages from ``coco/<split>.json``,
and seeded training crops with their boxes.

Crops keep the ground truth exact: they are integer windows of the page at its own scale, so a box
moves by the crop's origin and nothing else; no flips (they would turn flag8thUp into a mirrored glyph
that is no class at all) and no rescaling. The only other augmentation is photometric (contrast and
noise on the image, never on the boxes). Boxes keep their full extent even where a crop cuts them: the
centre-heatmap detector learns a symbol's size from its centre, and Faster R-CNN's targets are clipped
by ``clip_targets``.

Tensors: ``float32 (1, H, W)`` with ink = 1, paper = 0 (as the classifier's patches), so zero padding is
blank paper.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from deepscores.errors import DeepScoresError
from deepscores.formats.pngio import read_png


class DetectionDataError(DeepScoresError):
    """A split file or page image that cannot be used; the message names the file and the cause."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {' '.join(str(cause).split())}")


@dataclass(frozen=True)
class PageBoxes:
    """One page of a split: where its image is, its COCO image id and size, its boxes (xyxy px, end
    exclusive) and their class ids."""

    name: str
    image_path: Path
    image_id: int
    width: int
    height: int
    boxes: np.ndarray   # (n, 4) float32
    class_ids: np.ndarray  # (n,) int64


@dataclass(frozen=True)
class SplitData:
    """A split's pages and the dataset's class table (COCO categories: id → name)."""

    pages: list[PageBoxes]
    class_names: dict[int, str]
    source: Path


def load_split(data_dir: str | Path, split: str) -> SplitData:
    """The pages of ``split`` from ``data_dir/coco/<split>.json`` (images in ``images_png/``)."""
    root = Path(data_dir)
    path = root / "coco" / f"{split}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DetectionDataError(path, f"cannot read the split's COCO file ({exc.strerror or exc}); is {root} a "
                                       "dataset made by deepscores generate?") from None
    except json.JSONDecodeError as exc:
        raise DetectionDataError(path, f"not JSON: {exc}") from None
    try:
        names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        by_image: dict[int, list[dict]] = {}
        for ann in data["annotations"]:
            by_image.setdefault(int(ann["image_id"]), []).append(ann)
        pages = []
        for image in sorted(data["images"], key=lambda im: int(im["id"])):
            anns = by_image.get(int(image["id"]), [])
            xywh = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(len(anns), 4)
            boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            pages.append(PageBoxes(Path(image["file_name"]).stem, root / "images_png" / image["file_name"],
                                   int(image["id"]), int(image["width"]), int(image["height"]), boxes,
                                   np.array([int(a["category_id"]) for a in anns], dtype=np.int64)))
    except (KeyError, TypeError, ValueError) as exc:
        raise DetectionDataError(path, f"not a COCO detection file ({type(exc).__name__}: {exc})") from None
    return SplitData(pages, names, path)


class ClassIndex:
    """Dataset class ids ↔ the model's contiguous indices 0..K−1 (in id order)."""

    def __init__(self, class_ids: list[int] | tuple[int, ...]) -> None:
        self.class_ids = tuple(sorted(int(c) for c in class_ids))
        self._index = {c: i for i, c in enumerate(self.class_ids)}
        self._lookup = np.full(max(self.class_ids, default=0) + 1, -1, dtype=np.int64)
        self._lookup[list(self.class_ids)] = np.arange(len(self.class_ids))

    def __len__(self) -> int:
        return len(self.class_ids)

    def to_index(self, class_ids: np.ndarray) -> np.ndarray:
        out = self._lookup[np.clip(class_ids, 0, len(self._lookup) - 1)]
        if np.any((class_ids >= len(self._lookup)) | (out < 0)):
            bad = sorted(set(int(c) for c in class_ids) - set(self.class_ids))
            raise DeepScoresError(f"class ids {bad[:5]} are not in the model's class table")
        return out

    def to_class_id(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(self.class_ids, dtype=np.int64)[index]


def read_page_image(page: PageBoxes) -> np.ndarray:
    """The page as uint8 (H, W), paper = 255; its size must be the one the COCO file states."""
    image = read_png(page.image_path)
    if image.dtype != np.uint8 or image.shape != (page.height, page.width):
        raise DetectionDataError(page.image_path, f"expected an 8-bit {page.width}x{page.height} page, found "
                                                  f"{image.dtype} {image.shape[1]}x{image.shape[0]}")
    return image


def ink(image_u8: np.ndarray) -> np.ndarray:
    """uint8 paper = 255 → float32 ink = 1, paper = 0."""
    return (255 - image_u8).astype(np.float32) * (1.0 / 255.0)


class _PageCache:
    """The last few decoded pages (one per worker process): consecutive crops come from one page."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.pages: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, page: PageBoxes) -> np.ndarray:
        if page.image_path in self.pages:
            self.pages.move_to_end(page.image_path)
            return self.pages[page.image_path]
        image = read_page_image(page)
        self.pages[page.image_path] = image
        while len(self.pages) > self.size:
            self.pages.popitem(last=False)
        return image


class DetectionCrops(Dataset):
    """Training crops: item ``i`` of epoch ``e`` is a ``crop_px`` square of page ``order_e[i // crops_per_page]``.

    With probability ``ink_bias`` the crop is placed around a random symbol of the page (anywhere in
    the crop), otherwise uniformly, so the mostly empty margins of a page are seen but do not dominate.
    Everything random is drawn from ``(seed, epoch, i)``: a resumed run sees the crops an uninterrupted
    one would. Items: ``(float32 (1, S, S), {"boxes": float32 (n, 4) crop xyxy, "labels": int64 (n,)})`` with
    labels as the ``ClassIndex``'s indices, for every box that overlaps the crop.
    """

    def __init__(self, pages: list[PageBoxes], classes: ClassIndex, crop_px: int, crops_per_page: int = 4,
                 seed: int = 0, ink_bias: float = 0.85, photometric: bool = True,
                 target_transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None) -> None:
        if not pages:
            raise DeepScoresError("no pages to train on")
        self.pages, self.classes, self.crop_px = pages, classes, crop_px
        self.crops_per_page, self.seed, self.ink_bias, self.photometric = crops_per_page, seed, ink_bias, photometric
        # e.g. the FCN's heatmap encoding: done here, it runs in the loader's worker processes.
        self.target_transform = target_transform
        self.labels = [classes.to_index(p.class_ids) for p in pages]
        self.cache = _PageCache()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch, 7]).permutation(len(self.pages))

    def __len__(self) -> int:
        return len(self.pages) * self.crops_per_page

    def crop_origin(self, page: PageBoxes, rng: np.random.Generator) -> tuple[int, int]:
        s = self.crop_px
        if len(page.boxes) and rng.random() < self.ink_bias:
            x0, y0, x1, y1 = page.boxes[rng.integers(len(page.boxes))]
            cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
            x, y = int(cx - rng.uniform(0.1, 0.9) * s), int(cy - rng.uniform(0.1, 0.9) * s)
        else:
            x, y = int(rng.integers(0, max(1, page.width - s + 1))), int(rng.integers(0, max(1, page.height - s + 1)))
        return min(max(x, 0), max(page.width - s, 0)), min(max(y, 0), max(page.height - s, 0))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        page_index = int(self.order[i // self.crops_per_page])
        page = self.pages[page_index]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        x, y = self.crop_origin(page, rng)
        s = self.crop_px
        window = self.cache.get(page)[y:y + s, x:x + s]
        crop = np.zeros((s, s), np.float32)
        crop[:window.shape[0], :window.shape[1]] = ink(window)
        if self.photometric:
            crop = photometric_jitter(crop, rng)
        boxes = page.boxes - np.array([x, y, x, y], np.float32)
        visible = (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (boxes[:, 0] < s) & (boxes[:, 1] < s)
        target = {"boxes": torch.from_numpy(boxes[visible].copy()),
                  "labels": torch.from_numpy(self.labels[page_index][visible].copy())}
        if self.target_transform is not None:
            target = self.target_transform(target)
        return torch.from_numpy(crop)[None], target


def photometric_jitter(ink_crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink strength 0.75–1 and faint sensor noise: the boxes do not move, the model stops trusting pure black."""
    out = ink_crop * rng.uniform(0.75, 1.0)
    if rng.random() < 0.5:
        out = out + rng.normal(0.0, rng.uniform(0.0, 0.04), out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out.astype(np.float32))


def clip_targets(target: dict[str, torch.Tensor], size_px: int, min_visible: float = 0.5) -> dict[str, torch.Tensor]:
    """Boxes clipped to a crop, keeping those with at least ``min_visible`` of their area inside
    (Faster R-CNN's regression targets must lie in the image it sees)."""
    boxes = target["boxes"]
    clipped = boxes.clamp(0, size_px)
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    inside = (clipped[:, 2] - clipped[:, 0]).clamp(min=0) * (clipped[:, 3] - clipped[:, 1]).clamp(min=0)
    keep = (inside >= min_visible * area) & (clipped[:, 2] - clipped[:, 0] >= 1) & (clipped[:, 3] - clipped[:, 1] >= 1)
    return {"boxes": clipped[keep], "labels": target["labels"][keep]}


def collate_crops(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]
                  ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    return torch.stack([image for image, _ in batch]), [target for _, target in batch]


def most_frequent_classes(pages: list[PageBoxes], k: int = 10) -> list[int]:
    """The ``k`` class ids with the most boxes in ``pages`` (ties by id)."""
    ids, counts = np.unique(np.concatenate([p.class_ids for p in pages]) if pages else np.zeros(0, np.int64),
                            return_counts=True)
    order = np.lexsort((ids, -counts))
    return [int(c) for c in ids[order][:k]]
