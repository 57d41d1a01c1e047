"""Classification patches (``classification_data/``): a fixed-size crop around chosen symbols, one folder per class.

The DeepScores classification images are 220 px high and 120 px wide; so are ours by default.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from deepscores.classes import Catalogue
from deepscores.formats import FormatError
from deepscores.formats.atomic import staged_folder, write_new_file
from deepscores.formats.deepscores_xml import PageRecord, read_page_xml
from deepscores.formats.pngio import encode_png, read_png

#: (height, width) of a patch in pixels, as in the published DeepScores classification set.
PATCH_SIZE = (220, 120)
PATCH_FOLDER = "classification_data"


def _priority(seed: int, page: str, instance_id: int) -> bytes:
    # A hash of the symbol's identity, not a draw from an RNG: the choice cannot depend on the
    # order pages are visited in, so resumed or parallel runs pick the same symbols.
    return hashlib.sha256(f"{seed}\x1f{page}\x1f{instance_id}".encode("utf-8")).digest()[:16]


def select_patches(records: Iterable[tuple[str, PageRecord]], per_class: int, seed: int) -> dict[str, list[tuple[int, str]]]:
    """At most ``per_class`` visible symbols per class: page name → sorted ``[(instance_id, class_name)]``.

    Each class keeps the symbols of lowest priority ``hash(seed, page, instance)``, a seeded random
    subset that is the same whatever order the records come in. Hidden symbols have no pixels to show.
    """
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    heaps: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for name, record in records:
        for obj in record.objects:
            if obj.hidden:
                continue
            # A max-heap (negated priority, as an integer: the same order as the 16 bytes, at a
            # fraction of the cost for a dataset's millions of symbols) of the per_class lowest seen
            # so far: memory per class is bounded.
            key = -int.from_bytes(_priority(seed, name, obj.instance_id), "big")
            heap = heaps[obj.class_name]
            if len(heap) < per_class:
                heapq.heappush(heap, (key, name, obj.instance_id))
            elif per_class and key > heap[0][0]:
                heapq.heapreplace(heap, (key, name, obj.instance_id))
    selection: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for class_name, heap in heaps.items():
        for _, name, instance_id in heap:
            selection[name].append((instance_id, class_name))
    return {name: sorted(selection[name]) for name in sorted(selection)}


def cut_patch(image: np.ndarray, bbox_xyxy: tuple[int, int, int, int], size: tuple[int, int] = PATCH_SIZE) -> np.ndarray:
    """A ``size = (height, width)`` crop of ``image`` centred on the box centre, white (255) outside the page.

    A symbol larger than the patch is cut at the patch's edges, never rescaled, so every patch has the
    page's own scale.
    """
    height, width = size
    x0, y0, x1, y1 = bbox_xyxy
    # Integer arithmetic: the centre of an odd-sized box falls on the same side every time.
    left, top = (x0 + x1 - width) // 2, (y0 + y1 - height) // 2
    patch = np.full((height, width), 255, dtype=image.dtype)
    src_x0, src_y0 = max(left, 0), max(top, 0)
    src_x1, src_y1 = min(left + width, image.shape[1]), min(top + height, image.shape[0])
    if src_x0 < src_x1 and src_y0 < src_y1:
        patch[src_y0 - top:src_y1 - top, src_x0 - left:src_x1 - left] = image[src_y0:src_y1, src_x0:src_x1]
    return patch


def _write_page_patches(root: str, patches: str, page: str, chosen: list[tuple[int, str, tuple[int, int, int, int]]],
                        size: tuple[int, int]) -> None:
    """Cut the chosen ``(instance, class, box)`` patches of one page (its image read once from the
    dataset ``root``) and write them into the staged ``patches`` folder.

    A small dataset writes hundreds of patches per page, so this loop stays lean: string paths, the
    class folders made beforehand, one plain file per patch (the folder is swapped in whole).
    """
    image = read_png(os.path.join(root, "images_png", f"{page}.png"))
    for instance_id, class_name, box in chosen:
        write_new_file(os.path.join(patches, class_name, f"{page}_{instance_id}.png"), encode_png(cut_patch(image, box, size)))


def _write_chunk(root: str, patches: str, pages: list[tuple[str, list]], size: tuple[int, int]) -> None:
    for page, chosen in pages:
        _write_page_patches(root, patches, page, chosen, size)


def write_patches(dataset_dir: str | Path, selection: dict[str, list[tuple[int, str]]], catalogue: Catalogue,
                  seed: int, per_class: int, size: tuple[int, int] = PATCH_SIZE, workers: int = 1,
                  records: Mapping[str, PageRecord] | None = None) -> None:
    """Write ``classification_data/<className>/<page>_<instance>.png`` for the selection, plus
    ``class_names.csv`` (``id,name`` of the whole catalogue) and ``config.txt`` (size, seed, counts).

    Boxes come from ``records`` (page name → its record) when given, else from
    ``xml_annotations/<page>.xml``; pixels from ``images_png/<page>.png``, read once per page.
    The folder is built beside the dataset's and replaces it whole (`atomic.staged_folder`): no
    patch of an earlier selection stays, and no reader sees a part. Creating thousands of small
    files costs more than cutting them, so ``workers`` processes share the pages.
    """
    root = Path(dataset_dir)
    counts: dict[str, int] = {name: 0 for name in catalogue.names}
    for chosen in selection.values():
        for _, class_name in chosen:
            catalogue.id_of(class_name)  # an unknown class is an error, not a new folder
            counts[class_name] += 1
    items = []
    for page, chosen in sorted(selection.items()):
        record = records[page] if records is not None and page in records else \
            read_page_xml(root / "xml_annotations" / f"{page}.xml")
        boxes = {obj.instance_id: obj.bbox_xyxy for obj in record.objects}
        missing = [i for i, _ in chosen if i not in boxes]
        if missing:
            raise FormatError(root / "xml_annotations" / f"{page}.xml", f"no object with instance {missing[0]}")
        items.append((page, [(i, class_name, boxes[i]) for i, class_name in chosen]))
    with staged_folder(root / PATCH_FOLDER) as staging:
        for class_name, count in counts.items():
            if count:
                (staging / class_name).mkdir()
        if workers > 1 and len(items) > 1:
            chunks = [items[i::workers * 4] for i in range(workers * 4)]
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
                list(pool.map(_write_chunk, [str(root)] * len(chunks), [str(staging)] * len(chunks), chunks,
                              [size] * len(chunks)))
        else:
            _write_chunk(str(root), str(staging), items, size)
        write_new_file(str(staging / "class_names.csv"),
                       ("id,name\n" + "".join(f"{catalogue.id_of(n)},{n}\n" for n in catalogue.names)).encode("utf-8"))
        config = [f"patch_height={size[0]}\n", f"patch_width={size[1]}\n", f"per_class={per_class}\n", f"seed={seed}\n",
                  f"classes={catalogue.name}\n", f"patches={sum(counts.values())}\n"]
        config += [f"count.{name}={counts[name]}\n" for name in catalogue.names]
        write_new_file(str(staging / "config.txt"), "".join(config).encode("utf-8"))
