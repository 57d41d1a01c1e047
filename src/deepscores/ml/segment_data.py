"""Pages and their class masks as segmentation training data: the label map (class id ↔ model index),
lazy page loading with a small cache, seeded random crops, and the loader that feeds them.

Labels: the model predicts index 0 for background (mask value 255) and index i for the i-th class of
``dataset.json``'s ``classes`` (catalogue order); ``LabelMap`` is saved in the run's config so that
predictions map back to class ids. Crops keep labels exact: integer offsets only, photometric jitter on
the image only, and no flips (a flipped ``flag8thUp`` is a ``flag8thDown``; a flipped ``gClef`` is no symbol).

Each crop is drawn from its own generator seeded by ``(seed, epoch, index)``, so a crop does not depend on
the worker that makes it, on the number of workers, or on the global RNG, and a resumed run sees the
crops an uninterrupted run would.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from deepscores.classes import dataset_catalogue
from deepscores.errors import DeepScoresError
from deepscores.formats import FormatError
from deepscores.formats.pngio import read_png
from deepscores.ml.datasets import read_split

BACKGROUND_ID = 255       # mask value of background pixels
IGNORE_INDEX = -100       # F.cross_entropy's default: pixels left out of the loss
_UNKNOWN = 255            # label-map lookup value of an id that is not a class (indices stop at 254)
_INK_LEVEL = 250          # an image pixel darker than this is ink (anti-aliased edges included)
_NEAR_INK_PX = 2          # pixels this close to ink are always in the loss


@dataclass(frozen=True)
class LabelMap:
    """Model index ``i + 1`` ↔ ``class_ids[i]`` / ``class_names[i]``; index 0 is background."""

    class_ids: tuple[int, ...]
    class_names: tuple[str, ...]

    @property
    def num_outputs(self) -> int:
        return len(self.class_ids) + 1

    def index_lut(self) -> np.ndarray:
        """uint8 (256,): mask value → model index (255 → 0; an id outside the classes → 255)."""
        lut = np.full(256, _UNKNOWN, np.uint8)
        lut[BACKGROUND_ID] = 0
        lut[list(self.class_ids)] = np.arange(1, len(self.class_ids) + 1)
        return lut

    def id_lut(self) -> np.ndarray:
        """uint8 (num_outputs,): model index → mask value (0 → 255)."""
        return np.array((BACKGROUND_ID, *self.class_ids), np.uint8)

    def to_json(self) -> dict[str, list]:
        return {"class_ids": list(self.class_ids), "class_names": list(self.class_names)}


def read_label_map(data_dir: str | Path) -> LabelMap:
    """The classes of ``dataset.json`` (``[{id, name}]``), else the catalogue the dataset names."""
    path = Path(data_dir) / "dataset.json"
    try:
        classes = json.loads(path.read_text(encoding="utf-8")).get("classes")
    except FileNotFoundError:
        raise FormatError(path, "no such file (not a dataset folder)") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise FormatError(path, f"unreadable dataset description ({exc})") from None
    if classes is None:
        catalogue = dataset_catalogue(data_dir)
        return LabelMap(tuple(catalogue.ids), tuple(catalogue.names))
    try:
        ids = tuple(int(c["id"]) for c in classes)
        names = tuple(str(c["name"]) for c in classes)
    except (TypeError, KeyError, ValueError):
        raise FormatError(path, "'classes' must be a list of {id, name}") from None
    if not ids or any(not 1 <= i <= 254 for i in ids) or any(a >= b for a, b in zip(ids, ids[1:])):
        raise FormatError(path, "class ids must increase within 1..254")
    return LabelMap(ids, names)


def load_page(data_dir: str | Path, page: str, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(image uint8 (H, W) with paper = 255, labels uint8 (H, W) model indices)`` of one page."""
    root = Path(data_dir)
    image = read_png(root / "images_png" / f"{page}.png")
    mask_path = root / "pix_annotations_png" / f"{page}.png"
    mask = read_png(mask_path)
    if image.dtype != np.uint8 or mask.dtype != np.uint8:
        raise FormatError(mask_path if mask.dtype != np.uint8 else root / "images_png" / f"{page}.png",
                          "expected an 8-bit greyscale PNG")
    if mask.shape != image.shape:
        raise FormatError(mask_path, f"mask is {mask.shape[1]}×{mask.shape[0]} px, "
                                     f"its image {image.shape[1]}×{image.shape[0]}")
    labels = lut[mask]
    if (labels == _UNKNOWN).any():
        bad = sorted(set(np.unique(mask[labels == _UNKNOWN]).tolist()))[:5]
        raise FormatError(mask_path, f"class ids {bad} are not classes of dataset.json")
    return image, labels


def to_float_page(image_u8: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) with paper = 255 → float32 (1, H, W) with ink = 1, paper = 0 (zero padding is paper)."""
    return torch.from_numpy(255 - image_u8).unsqueeze(0).to(torch.float32).div_(255.0)


def pick_pages(data_dir: str | Path, split: str, count: int | None = None) -> list[str]:
    """The split's page names, sorted; ``count`` of them spread evenly over the list when given."""
    pages = sorted(read_split(data_dir, split))
    if count is not None and 0 < count < len(pages):
        pages = [pages[round(i * (len(pages) - 1) / max(1, count - 1))] for i in range(count)]
    return pages


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a (2r+1)² square, separably."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for shift in range(1, radius + 1):
            lo = [slice(None)] * 2
            hi = [slice(None)] * 2
            lo[axis], hi[axis] = slice(shift, None), slice(None, -shift)
            grown[tuple(lo)] |= out[tuple(hi)]
            grown[tuple(hi)] |= out[tuple(lo)]
        out = grown
    return out


class _Page:
    """A decoded page plus what crop sampling needs: the foreground pixels grouped by class."""

    def __init__(self, image: np.ndarray, labels: np.ndarray) -> None:
        self.image, self.labels = image, labels
        flat = labels.ravel()
        foreground = np.flatnonzero(flat)
        order = np.argsort(flat[foreground], kind="stable")
        self.pixels = foreground[order]                  # flat indices, grouped by class
        counts = np.bincount(flat[self.pixels], minlength=256)
        self.classes = np.flatnonzero(counts)            # classes on the page, ascending
        self.starts = np.concatenate([[0], np.cumsum(counts[self.classes])])


class SegmentCrops(Dataset):
    """``length`` random crops per epoch of a split's pages; item ``(epoch, i)`` →
    ``(float (1, crop, crop) image with ink = 1, int64 (crop, crop) labels)``.

    A crop is centred (± a quarter crop) on a pixel of a class drawn uniformly among the classes of its
    page with probability ``centre_on_symbol``, else placed uniformly: rare classes are seen often and
    blank margins still occur. In the labels, blank paper farther than 2 px from any ink is kept with
    probability ``paper_keep`` and otherwise set to ``IGNORE_INDEX``: it is 90 % of a page, trivially
    background, and classifying it costs more than the rest of the step.
    ``crops_per_page`` consecutive items share a page, so a worker's page cache is hit.
    """

    def __init__(self, data_dir: str | Path, split: str, label_map: LabelMap, length: int, crop_px: int = 320,
                 seed: int = 0, centre_on_symbol: float = 0.9, paper_keep: float = 1 / 16, jitter: bool = True,
                 crops_per_page: int = 2, cache_pages: int = 8) -> None:
        self.data_dir = Path(data_dir)
        self.pages = pick_pages(self.data_dir, split)
        if not self.pages:
            raise DeepScoresError(f"{self.data_dir / 'splits' / f'{split}.txt'}: no pages in split {split!r}")
        self.lut = label_map.index_lut()
        self.length, self.crop_px, self.seed = length, crop_px, seed
        self.centre_on_symbol, self.paper_keep, self.jitter = centre_on_symbol, paper_keep, jitter
        self.crops_per_page, self.cache_pages = crops_per_page, cache_pages
        self._cache: OrderedDict[str, _Page] = OrderedDict()

    def __len__(self) -> int:
        return self.length

    def page(self, name: str) -> _Page:
        """Decoded page ``name`` (least recently used pages leave the cache first)."""
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        page = _Page(*load_page(self.data_dir, name, self.lut))
        self._cache[name] = page
        while len(self._cache) > self.cache_pages:
            self._cache.popitem(last=False)
        return page

    def crop_origin(self, epoch: int, index: int, stream: int = 0) -> tuple[str, int, int, np.random.Generator]:
        """``(page, top, left, generator)`` of crop ``index``: where it lies, and the generator that cuts it."""
        page_rng = np.random.default_rng([self.seed, stream, epoch, index // self.crops_per_page])
        name = self.pages[page_rng.integers(len(self.pages))]
        page = self.page(name)
        rng = np.random.default_rng([self.seed, stream, epoch, index, 1])
        height, width = page.labels.shape
        size = self.crop_px
        if len(page.classes) and rng.random() < self.centre_on_symbol:
            k = rng.integers(len(page.classes))
            cy, cx = divmod(int(page.pixels[rng.integers(page.starts[k], page.starts[k + 1])]), width)
            y0 = cy - size // 2 + int(rng.integers(-size // 4, size // 4 + 1))
            x0 = cx - size // 2 + int(rng.integers(-size // 4, size // 4 + 1))
        else:
            y0, x0 = int(rng.integers(0, max(1, height - size + 1))), int(rng.integers(0, max(1, width - size + 1)))
        return name, max(0, min(y0, height - size)), max(0, min(x0, width - size)), rng

    def crop(self, epoch: int, index: int, stream: int = 0) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """``(image uint8, labels uint8, generator)`` of crop ``index``; padded with paper where the page is smaller."""
        name, y0, x0, rng = self.crop_origin(epoch, index, stream)
        page = self.page(name)
        size = self.crop_px
        window = (slice(y0, y0 + size), slice(x0, x0 + size))
        height, width = page.labels[window].shape
        image = np.full((size, size), 255, np.uint8)
        labels = np.zeros((size, size), np.uint8)
        image[:height, :width] = page.image[window]
        labels[:height, :width] = page.labels[window]
        return image, labels, rng

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        # numpy, not torch: in the main process (workers=0) torch's threads would fight over 100 k pixels.
        epoch, index = item
        image_u8, labels_u8, rng = self.crop(epoch, index)
        labels = labels_u8.astype(np.int64)
        if self.paper_keep < 1:
            near_ink = _dilate((image_u8 < _INK_LEVEL) | (labels_u8 > 0), _NEAR_INK_PX)
            labels[~near_ink & (rng.random(labels.shape, dtype=np.float32) >= self.paper_keep)] = IGNORE_INDEX
        x = (255 - image_u8).astype(np.float32)
        if self.jitter:
            # Lighter ink and a little sensor noise; the labels do not move.
            x *= np.float32(rng.uniform(0.75, 1.0) / 255.0)
            if rng.random() < 0.5:
                x += rng.normal(0.0, rng.uniform(0.0, 0.05), x.shape).astype(np.float32)
                np.clip(x, 0.0, 1.0, out=x)
        else:
            x *= np.float32(1 / 255.0)
        return torch.from_numpy(x)[None], torch.from_numpy(labels)


class EpochSampler(Sampler):
    """Yields ``(epoch, i)`` for i in range(length): the epoch travels with the index, so persistent
    workers need no message to know which epoch's crops to cut."""

    def __init__(self, length: int) -> None:
        self.length, self.epoch = length, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, i) for i in range(self.length))


def make_crop_loader(dataset: SegmentCrops, batch_size: int, device: torch.device,
                     workers: int | None = None) -> DataLoader:
    """Batches ``(float (N, 1, c, c), int64 (N, c, c))``; ``loader.sampler.set_epoch(e)`` picks the epoch.

    On CPU one worker decodes and cuts while the main process's threads run the convolutions (decoding
    a page is ≈ 65 ms, a training step ≈ 1 s): both cores stay busy. On CUDA, more workers.
    """
    if workers is None:
        workers = 1 if device.type == "cpu" else min(8, os.cpu_count() or 1)
    return DataLoader(dataset, batch_size, sampler=EpochSampler(len(dataset)), num_workers=workers,
                      persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                      pin_memory=device.type == "cuda", drop_last=True)


def crop_class_frequencies(dataset: SegmentCrops, num_outputs: int, crops: int = 64) -> np.ndarray:
    """float64 (num_outputs,): each index's share of the pixels the loss sees, over ``crops`` sample crops
    (cut from a stream of their own, so the training crops stay as they are)."""
    counts = np.zeros(num_outputs, np.int64)
    for i in range(crops):
        image_u8, labels_u8, rng = dataset.crop(0, i, stream=1)
        keep = _dilate((image_u8 < _INK_LEVEL) | (labels_u8 > 0), _NEAR_INK_PX)
        keep |= rng.random(labels_u8.shape, dtype=np.float32) < dataset.paper_keep
        counts += np.bincount(labels_u8[keep], minlength=num_outputs)
    dataset._cache.clear()  # the loader's workers get a copy of the dataset: send it empty
    return counts / max(1, counts.sum())
