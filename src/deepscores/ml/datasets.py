"""Classification patches as PyTorch data: which patches belong to a split, how they become tensors, and
how batches reach the model.

Splits come from the dataset's ``splits/{train,val,test}.txt`` (page names; split by score), so a patch
belongs to the split of the page it was cut from and patches of test scores are never trained on.

Font hold-out (``holdout_font='Petaluma'``): train and val keep their split's pages in the other fonts;
the test set is every page in the held-out font whose score has no page in train or val. Fonts are drawn
per score, so that is in practice every Petaluma page of all three splits: no Petaluma score was seen
(they are dropped from train and val), so the hold-out test has neither seen fonts nor seen scores, and
it is about five times larger than the test split's Petaluma pages alone.

Tensors: a patch is ``uint8`` (220, 120) on disk with paper = 255; the model sees ``float32`` (1, 220, 120)
with **ink = 1, paper = 0**, so the zero padding of convolutions and of shifts is blank paper.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from deepscores.errors import DeepScoresError
from deepscores.formats.patches import PATCH_FOLDER, PATCH_SIZE

SPLITS = ("train", "val", "test")

#: Preload all patches into one uint8 tensor below this size. 36 k patches (400 pages, ≤ 3000 per class)
#: are 0.96 GB and decode in ≈ 10 s on 2 cores; beyond 3 GB the files are read by DataLoader workers.
PRELOAD_MAX_BYTES = 3 * 2**30


class PatchError(DeepScoresError):
    """A patch folder or file is missing or unreadable; the message names the path and the cause."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {' '.join(str(cause).split())}")


def page_of(patch_path: Path) -> str:
    """``<page>_<instance>.png`` → ``<page>``."""
    page, sep, instance = patch_path.stem.rpartition("_")
    if not sep or not instance.isdigit():
        raise PatchError(patch_path, "patch name is not <page>_<instance>.png")
    return page


def font_of(page: str) -> str:
    """``<score_id>-p<NNN>-<font>`` → ``font`` (lower case, as in the page name)."""
    return page.rsplit("-", 1)[-1]


def score_of(page: str) -> str:
    return page.split("-", 1)[0]


def read_class_names(data_dir: str | Path) -> list[str]:
    """Class names in catalogue order from ``classification_data/class_names.csv``; a class's index is
    its position (= class id − 1 in the DeepScores vocabulary; v2 has a gap before our barline)."""
    path = Path(data_dir) / PATCH_FOLDER / "class_names.csv"
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except OSError as exc:
        raise PatchError(path, f"cannot read class list ({exc.strerror or exc})") from None
    if not rows or rows[0] != ["id", "name"]:
        raise PatchError(path, "header must be 'id,name'")
    body = [row for row in rows[1:] if len(row) == 2]
    names = [row[1] for row in body]
    try:
        ids = [int(row[0]) for row in body]
    except ValueError:
        ids = []
    if not names or len(ids) != len(names) or any(a >= b for a, b in zip(ids, ids[1:])) or ids[0] < 1:
        raise PatchError(path, "ids must be increasing positive integers with one 'id,name' per line")
    return names


def read_split(data_dir: str | Path, split: str) -> set[str]:
    if split not in SPLITS:
        raise DeepScoresError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    path = Path(data_dir) / "splits" / f"{split}.txt"
    try:
        return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    except OSError as exc:
        raise PatchError(path, f"cannot read split list ({exc.strerror or exc})") from None


def select_pages(data_dir: str | Path, split: str | None, holdout_font: str | None = None,
                 fonts: Sequence[str] | None = None) -> set[str] | None:
    """The page names a split may use (``None``: every page), after the font rules in the module docstring."""
    held = holdout_font.lower() if holdout_font else None
    keep = {f.lower() for f in fonts} if fonts else None
    if split is None:
        pages = set().union(*(read_split(data_dir, s) for s in SPLITS))
    elif held and split == "test":
        seen = {score_of(p) for s in ("train", "val") for p in read_split(data_dir, s) if font_of(p) != held}
        every = set().union(*(read_split(data_dir, s) for s in SPLITS))
        return {p for p in every if font_of(p) == held and score_of(p) not in seen}
    else:
        pages = read_split(data_dir, split)
    if held:
        pages = {p for p in pages if font_of(p) != held}
    if keep is not None:
        pages = {p for p in pages if font_of(p) in keep}
    return pages


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (…, H, W) with paper = 255 → float32 (…, 1, H, W) with ink = 1, paper = 0."""
    return (255 - images_u8).unsqueeze(-3).to(torch.float32).div_(255.0)


def random_shift(images: torch.Tensor, max_px: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of a (N, C, H, W) batch moved by its own integer offset in [−max_px, max_px], blank filled.

    Small enough that the labelled symbol stays the central one: it teaches the model that the exact
    centring of a crop is not a feature, which is all the augmentation patches need.
    """
    if max_px <= 0:
        return images
    n, _, h, w = images.shape
    offsets = torch.randint(-max_px, max_px + 1, (n, 2), generator=generator).tolist()
    out = torch.zeros_like(images)
    for i, (dy, dx) in enumerate(offsets):
        out[i, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            images[i, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


class PatchDataset(Dataset):
    """Patches of ``data_dir/classification_data`` restricted to a split (and fonts); items are
    ``(transform(uint8 (H, W) tensor), class index)`` with class index = the class's catalogue position."""

    def __init__(self, data_dir: str | Path, split: str | None = "train", holdout_font: str | None = None,
                 fonts: Sequence[str] | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.split = split
        self.transform = transform
        self.class_names = read_class_names(self.data_dir)
        index = {name: i for i, name in enumerate(self.class_names)}
        pages = select_pages(self.data_dir, split, holdout_font, fonts)
        root = self.data_dir / PATCH_FOLDER
        samples: list[tuple[Path, int]] = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name not in index:
                raise PatchError(folder, "patch folder is not a class of class_names.csv")
            for path in sorted(folder.iterdir()):
                if path.suffix != ".png" or not path.is_file():
                    raise PatchError(path, "unexpected entry in a patch folder (only <page>_<instance>.png files)")
                if pages is None or page_of(path) in pages:
                    samples.append((path, index[folder.name]))
        self.samples = samples

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([label for _, label in self.samples], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, i: int) -> torch.Tensor:
        """The uint8 (H, W) patch ``i`` as stored (paper = 255)."""
        path = self.samples[i][0]
        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert("L"))
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's ways of saying "not an image"
            raise PatchError(path, f"unreadable patch ({exc})") from None
        if array.shape != PATCH_SIZE:
            raise PatchError(path, f"patch is {array.shape[0]}×{array.shape[1]} px, expected {PATCH_SIZE[0]}×{PATCH_SIZE[1]}")
        return torch.from_numpy(array.copy())

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.read(i)
        return (self.transform(image) if self.transform else image), self.samples[i][1]

    def preload(self, threads: int = 0) -> torch.Tensor:
        """All patches as one uint8 (N, H, W) tensor; PNG decoding releases the GIL, so threads share it."""
        out = torch.empty((len(self), *PATCH_SIZE), dtype=torch.uint8)

        def fill(i: int) -> None:
            out[i] = self.read(i)

        with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
            list(pool.map(fill, range(len(self)), chunksize=256))
        return out


def eval_transform(image_u8: torch.Tensor) -> torch.Tensor:
    return to_float(image_u8)


def train_transform(max_shift_px: int = 3) -> Callable[[torch.Tensor], torch.Tensor]:
    def transform(image_u8: torch.Tensor) -> torch.Tensor:
        return random_shift(to_float(image_u8)[None], max_shift_px)[0]
    return transform


def sample_weights(labels: torch.Tensor, balance: float) -> torch.Tensor | None:
    """Per-sample draw weights that make class c appear ∝ count_c ** (1 − balance); ``None`` when balance = 0.

    0 keeps the natural frequencies (a class with 10 patches is seen 300× less than one with 3000),
    1 draws every class equally (rare classes repeat their few patches until they are memorised).
    """
    if balance <= 0:
        return None
    counts = torch.bincount(labels).to(torch.float64)
    return counts[labels].pow(-balance)


class TensorBatches:
    """Batches from preloaded uint8 patches: shuffled (or weighted-drawn) per epoch from a generator seeded
    by ``(seed, epoch)``, so an interrupted and resumed run sees the same batches as an uninterrupted one."""

    def __init__(self, images_u8: torch.Tensor, labels: torch.Tensor, batch_size: int, train: bool,
                 seed: int = 0, max_shift_px: int = 3, balance: float = 0.0,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.images, self.labels = images_u8, labels
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.max_shift_px = max_shift_px
        self.weights = sample_weights(labels, balance) if train else None
        self.memory_format = memory_format
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.labels)
        if not self.train:
            order = torch.arange(n)
        elif self.weights is not None:
            order = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        else:
            order = torch.randperm(n, generator=generator)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = to_float(self.images[idx])
            if self.train:
                x = random_shift(x, self.max_shift_px, generator)
            yield x.contiguous(memory_format=self.memory_format), self.labels[idx]


def make_loader(dataset: PatchDataset, batch_size: int, train: bool, device: torch.device, seed: int = 0,
                max_shift_px: int = 3, balance: float = 0.0,
                preload_max_bytes: int = PRELOAD_MAX_BYTES) -> TensorBatches | DataLoader:
    """Batches of ``(float (N, 1, H, W), int64 (N,))`` for one epoch per iteration (call ``set_epoch``).

    Small sets are preloaded (one decode per run instead of one per epoch, and the two CPU cores stay on
    the convolutions); large ones are read by worker processes that persist between epochs.
    """
    if len(dataset) == 0:
        raise DeepScoresError(f"{dataset.data_dir}: no patches in split {dataset.split!r}")
    channels_last = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    if len(dataset) * PATCH_SIZE[0] * PATCH_SIZE[1] <= preload_max_bytes:
        return TensorBatches(dataset.preload(), dataset.labels, batch_size, train, seed, max_shift_px, balance,
                             channels_last)
    dataset.transform = train_transform(max_shift_px) if train else eval_transform
    weights = sample_weights(dataset.labels, balance) if train else None
    generator = torch.Generator().manual_seed(seed)
    sampler = (torch.utils.data.WeightedRandomSampler(weights, len(dataset), generator=generator)
               if weights is not None else None)
    workers = min(4, os.cpu_count() or 1)
    return DataLoader(dataset, batch_size, shuffle=train and sampler is None, sampler=sampler,
                      generator=generator, num_workers=workers, persistent_workers=workers > 0,
                      pin_memory=device.type == "cuda", drop_last=False)
