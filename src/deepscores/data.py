"""Training data from the WebDataset shards (``shards/{split}-*.tar``): a torch ``IterableDataset``
for detection and segmentation that streams pages, each shard read once per epoch.

torch is imported here and only here: generating a dataset never needs it.

    from torch.utils.data import DataLoader
    from deepscores.data import ShardDataset

    pages = ShardDataset("dataset", split="train")
    for page in DataLoader(pages, batch_size=None, num_workers=4):
        page["image"], page["boxes"], page["labels"], page["class_mask"], page["instance_map"]

Pages differ in size and in symbol count, so batch them with ``collate_fn=list`` (or torchvision's
``lambda batch: tuple(zip(*batch))``) rather than the default collate.
"""

from __future__ import annotations

import glob
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from deepscores.formats import FormatError
from deepscores.formats.shards import JSON_MEMBER, SHARD_FOLDER, read_shard


def shard_paths(urls_or_dir: str | Path | Sequence[str | Path], split: str | None = "train") -> list[Path]:
    """The shard files: a dataset folder (or its ``shards/`` folder) → that split's shards in
    index order; a glob pattern → its matches, sorted; a list → those files, as given."""
    if isinstance(urls_or_dir, (str, Path)):
        text = str(urls_or_dir)
        path = Path(text)
        if path.is_dir():
            folder = path / SHARD_FOLDER if (path / SHARD_FOLDER).is_dir() else path
            pattern = f"{split}-*.tar" if split else "*.tar"
            found = sorted(folder.glob(pattern))
            if not found:
                raise FormatError(folder, f"no shards matching {pattern} (generate with --shards SIZE)")
            return found
        if glob.has_magic(text):
            found = sorted(Path(p) for p in glob.glob(text))
            if not found:
                raise FormatError(text, "no shards match this pattern")
            return found
        if not path.is_file():
            raise FormatError(path, "no such shard file or dataset folder")
        return [path]
    return [Path(p) for p in urls_or_dir]


def _png(data: bytes, where: str, dtype: type) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            array = np.array(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise FormatError(where, f"cannot read PNG: {exc}") from None
    if array.ndim != 2:
        raise FormatError(where, f"expected a greyscale PNG, found shape {array.shape}")
    return array.astype(dtype, copy=False)


def decode_sample(key: str, members: dict[str, bytes], shard: str = "", as_tensors: bool = True) -> dict[str, Any]:
    """One page from its shard members: ``image`` (1, H, W) uint8, ``class_mask`` (H, W) uint8,
    ``instance_map`` (H, W) int32 (torch has few uint16 ops), ``boxes`` (N, 4) float32 xyxy in pixel
    edges, ``labels`` (N,) int64 class ids, ``instance_ids`` (N,) int64, ``name`` and ``annotation``
    (the JSON). ``as_tensors=False`` gives numpy arrays instead."""
    where = f"{shard}:{key}"
    missing = [m for m in ("image.png", "class_mask.png", "instance.png", JSON_MEMBER) if m not in members]
    if missing:
        raise FormatError(where, f"sample lacks {', '.join(missing)}")
    annotation = json.loads(members[JSON_MEMBER])
    image = _png(members["image.png"], f"{where}.image.png", np.uint8)[None]
    class_mask = _png(members["class_mask.png"], f"{where}.class_mask.png", np.uint8)
    instance_map = _png(members["instance.png"], f"{where}.instance.png", np.int32)
    boxes = np.asarray(annotation["boxes_xyxy"], np.float32).reshape(-1, 4)
    labels = np.asarray(annotation["class_ids"], np.int64)
    instance_ids = np.asarray(annotation["instance_ids"], np.int64)
    arrays = {"image": image, "class_mask": class_mask, "instance_map": instance_map,
              "boxes": boxes, "labels": labels, "instance_ids": instance_ids}
    if as_tensors:
        arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    return {**arrays, "name": annotation["name"], "annotation": annotation}


class ShardDataset(IterableDataset):
    """Streams the pages of a split's shards, in shard order.

    With several DataLoader workers (and several processes under ``torch.distributed``) each one
    reads its own subset of the shards, so every shard is read exactly once per epoch. Shuffle at
    the shard level by passing a shuffled list of shard paths each epoch, or add a shuffle buffer
    after this dataset. ``decode=False`` yields the raw members (``{"name", "image.png",
    "class_mask.png", "instance.png", "json"}``, bytes) for decoding elsewhere, e.g. on a GPU.
    """

    def __init__(self, urls_or_dir: str | Path | Sequence[str | Path], split: str | None = "train",
                 decode: bool = True, as_tensors: bool = True) -> None:
        super().__init__()
        self.shards = shard_paths(urls_or_dir, split)
        self.decode = decode
        self.as_tensors = as_tensors

    def my_shards(self) -> list[Path]:
        """The shards this process and DataLoader worker reads (rank-major, then worker)."""
        shards = self.shards
        if dist.is_available() and dist.is_initialized():
            shards = shards[dist.get_rank()::dist.get_world_size()]
        info = get_worker_info()
        if info is not None:
            shards = shards[info.id::info.num_workers]
        return shards

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for shard in self.my_shards():
            for key, members in read_shard(shard):
                if self.decode:
                    yield decode_sample(key, members, str(shard), self.as_tensors)
                else:
                    yield {"name": key, **members}
