"""YOLO detection files (``yolo/``) in the layout ultralytics reads, written from its documented conventions.

::

    yolo/images/<page>.png   relative symlink to ../../images_png/<page>.png
    yolo/labels/<page>.txt   one line per symbol: class_index cx cy w h, normalised to [0, 1]
    yolo/<split>.txt         ./images/<page>.png, one per line
    yolo/data.yaml           train/val/test lists and the names of every class

Ultralytics finds a label by replacing the last ``/images/`` path component of the image path with
``/labels/`` and the suffix with ``.txt``, so the images must sit in a folder named ``images`` next
to ``labels``; the symlinks do that without copying pixels. ``class_index`` is the catalogue's class
id minus one (ultralytics counts from 0). Boxes: ``cx = (x0 + x1) / 2 / W``, ``w = (x1 - x0) / W``
on pixel edges. A page without symbols gets an empty label file (a background image).

``data.yaml`` has no ``path`` key on purpose: ultralytics resolves a relative ``path`` against its
own datasets folder (or the working directory, by version), never against the yaml, while without
``path`` it takes the yaml's folder as the root. ``train: train.txt`` is relative to that root, and
the ``./`` lines inside a list file are relative to the list file's folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from deepscores.classes import Catalogue
from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.deepscores_xml import PageRecord

SPLITS = ("train", "val", "test")


def label_lines(record: PageRecord, catalogue: Catalogue) -> str:
    """The label file of one page."""
    width, height = record.width, record.height
    lines = []
    for obj in record.objects:
        x0, y0, x1, y1 = obj.bbox_xyxy
        index = catalogue.index_of(obj.class_name)
        lines.append(f"{index} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
                     f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}\n")
    return "".join(lines)


def data_yaml(catalogue: Catalogue, splits: tuple[str, ...] = SPLITS) -> str:
    """The dataset description; names are JSON strings, which YAML reads as the same strings."""
    lines = ["# DeepScores-style dataset for ultralytics. No 'path' key: the root is this file's folder.\n"]
    lines += [f"{split}: {split}.txt\n" for split in splits]
    lines.append(f"nc: {len(catalogue)}\n")
    lines.append("names:\n")
    lines += [f"  {i}: {json.dumps(name)}\n" for i, name in enumerate(catalogue.names)]
    return "".join(lines)


def _link(link: Path, target: str) -> None:
    # Replace through a temp name so a reader never finds the link missing or half made.
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f".tmp-{link.name}.{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def write_yolo(out_dir: str | Path, records_by_split: dict[str, list[tuple[str, PageRecord]]], catalogue: Catalogue) -> None:
    """Write the YOLO tree under ``out_dir`` (the dataset's ``yolo/`` folder, a sibling of ``images_png/``).

    Every split in ``SPLITS`` gets a list file, empty when ``records_by_split`` lacks it. Labels and
    links of pages no split names any more are removed, so a rewritten tree holds exactly these pages.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    splits = tuple(dict.fromkeys([*SPLITS, *records_by_split]))
    keep: set[str] = set()
    for split in splits:
        pairs = records_by_split.get(split, [])
        for name, record in pairs:
            keep.add(name)
            atomic_write_text(out / "labels" / f"{name}.txt", label_lines(record, catalogue))
            _link(out / "images" / f"{name}.png", f"../../images_png/{name}.png")
        atomic_write_text(out / f"{split}.txt", "".join(f"./images/{name}.png\n" for name, _ in pairs))
    for stale in [*(out / "labels").glob("*.txt"), *(out / "images").glob("*.png")]:
        if stale.stem not in keep:
            stale.unlink()
    atomic_write_text(out / "data.yaml", data_yaml(catalogue, splits))
