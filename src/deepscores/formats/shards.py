"""WebDataset tar shards (``shards/{split}-{index:06d}.tar``): each page's image, class mask, instance
map and a JSON annotation as one sample, for streaming training data from many machines.

A sample is the tar members ``<page>.image.png``, ``<page>.class_mask.png``, ``<page>.instance.png``
and ``<page>.json`` (the page name has no dot, so WebDataset's key is the page name). The PNGs are
the page files' bytes, unchanged. The JSON holds ``name``, ``width``, ``height``, ``font``,
``score_id``, ``page_number``, ``classes`` (the vocabulary) and, one entry per symbol in instance
order, ``boxes_xyxy`` (pixel edges, end exclusive), ``class_ids``, ``class_names``,
``instance_ids``, ``hidden``, ``occluded``.

The writer is the standard ``tarfile``, not WebDataset's ``TarWriter``: importing ``webdataset``
imports torch (≈ 1.3 s here), and the generator must not need torch. Every member has mtime 0,
uid/gid 0, no owner names and mode 0444, in a fixed order, so the same pages give the same bytes.
A shard holds samples until the next one would take it past the size; a page larger than the size
alone gets a shard of its own.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from deepscores.classes import Catalogue
from deepscores.formats import FormatError
from deepscores.formats.atomic import TMP_PREFIX
from deepscores.formats.deepscores_xml import PageRecord

SHARD_FOLDER = "shards"
#: One MB of ``--shards`` (decimal, as WebDataset's sizes).
MB = 1_000_000
#: Tar member suffix → the dataset folder its bytes come from.
PNG_MEMBERS = {"class_mask.png": "pix_annotations_png", "image.png": "images_png", "instance.png": "instance_png"}
JSON_MEMBER = "json"

_BLOCK = tarfile.BLOCKSIZE           # 512: a member is one header block plus its data in whole blocks
_RECORD = tarfile.RECORDSIZE         # 10240: a closed archive is padded to whole records
_END_OF_ARCHIVE = 2 * _BLOCK


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def page_annotation(name: str, record: PageRecord, catalogue: Catalogue) -> dict:
    """The JSON annotation of one page; columns rather than objects, so a loader makes tensors directly."""
    objects = record.objects
    return {
        "name": name,
        "width": record.width,
        "height": record.height,
        "font": record.font,
        "score_id": record.score_id,
        "page_number": record.page_number,
        "classes": catalogue.name,
        "boxes_xyxy": [list(o.bbox_xyxy) for o in objects],
        "class_ids": [catalogue.id_of(o.class_name) for o in objects],
        "class_names": [o.class_name for o in objects],
        "instance_ids": [o.instance_id for o in objects],
        "hidden": [o.hidden for o in objects],
        "occluded": [o.occluded for o in objects],
    }


def sample_members(out: Path, name: str, record: PageRecord, catalogue: Catalogue) -> list[tuple[str, bytes]]:
    """The tar members of one page, in the order they are written (sorted by member name)."""
    members = [(f"{name}.{suffix}", (out / folder / f"{name}.png").read_bytes()) for suffix, folder in PNG_MEMBERS.items()]
    text = json.dumps(page_annotation(name, record, catalogue), sort_keys=True, separators=(",", ":"))
    members.append((f"{name}.{JSON_MEMBER}", text.encode("utf-8")))
    return sorted(members)


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def member_bytes(data_sizes: Iterable[int]) -> int:
    """Bytes the members take inside a tar (headers and padding), for names that fit a ustar header."""
    return sum(_BLOCK + _padded(size) for size in data_sizes)


def archive_bytes(members_total: int) -> int:
    """Size of the closed tar file whose members take ``members_total`` bytes."""
    return -(-(members_total + _END_OF_ARCHIVE) // _RECORD) * _RECORD


class _ShardFile:
    """One shard being written: a tar in a temp file, renamed into place when closed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.parent / f"{TMP_PREFIX}{path.name}.{os.getpid()}"
        self.handle = open(self.tmp, "wb")
        # ustar: no pax headers (those would carry times); a name too long for it raises instead.
        self.tar = tarfile.open(fileobj=self.handle, mode="w", format=tarfile.USTAR_FORMAT)
        self.members_total = 0

    def add(self, member: str, data: bytes) -> None:
        info = tarfile.TarInfo(member)
        info.size, info.mtime, info.mode = len(data), 0, 0o444
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self.tar.addfile(info, io.BytesIO(data))
        self.members_total += _BLOCK + _padded(len(data))

    def close(self) -> None:
        self.tar.close()
        self.handle.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


def write_shards(out: Path, pages_by_split: dict[str, list[tuple[str, PageRecord]]], catalogue: Catalogue,
                 shard_mb: float) -> list[Path]:
    """Write every split's pages, in the given order, as shards of at most ``shard_mb`` MB each.

    Shards of an earlier run in ``out/shards`` are removed first, so the folder holds exactly this
    dataset's shards. Returns the shard paths in split and index order.
    """
    folder = out / SHARD_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("*.tar"), *folder.glob(f"{TMP_PREFIX}*")]:
        stale.unlink()
    max_bytes = int(shard_mb * MB)
    written: list[Path] = []
    for split, pages in pages_by_split.items():
        index = 0
        current: _ShardFile | None = None
        try:
            for name, record in pages:
                members = sample_members(out, name, record, catalogue)
                size = member_bytes(len(data) for _, data in members)
                # Close before passing the size; an empty shard takes the sample whatever its size.
                if current is not None and archive_bytes(current.members_total + size) > max_bytes:
                    current.close()
                    current = None
                if current is None:
                    current = _ShardFile(folder / shard_name(split, index))
                    written.append(current.path)
                    index += 1
                for member, data in members:
                    current.add(member, data)
            if current is not None:
                current.close()
                current = None
        finally:
            if current is not None:
                current.abort()
    return written


def read_shard(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream one shard's samples as ``(key, {member suffix: bytes})``, in file order.

    Raises ``FormatError`` naming the shard for a damaged tar or a member outside the layout.
    """
    key: str | None = None
    sample: dict[str, bytes] = {}
    try:
        # "r|": a stream, read once from front to back; a shard is never loaded whole.
        with tarfile.open(path, mode="r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                base = info.name.rsplit("/", 1)[-1]
                if "." not in base:
                    raise FormatError(path, f"member {info.name!r} has no suffix")
                member_key, suffix = base.split(".", 1)
                if member_key != key:
                    if key is not None:
                        yield key, sample
                    key, sample = member_key, {}
                handle = tar.extractfile(info)
                assert handle is not None  # a regular file always has contents
                sample[suffix] = handle.read()
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise FormatError(path, f"cannot read tar shard: {exc}") from None
    if key is not None:
        yield key, sample
