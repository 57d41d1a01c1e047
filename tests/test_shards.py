"""WebDataset shards: written at finalize, byte-identical across runs, within the size, and streamed by
`deepscores.data.ShardDataset` with every page exactly once per epoch across DataLoader workers."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import music21
import numpy as np
import pytest

from deepscores.classes import load_catalogue
from deepscores.errors import OptionsError
from deepscores.formats.deepscores_xml import read_page_xml
from deepscores.formats.pngio import read_png
from deepscores.formats.shards import MB, SHARD_FOLDER, archive_bytes, member_bytes, read_shard
from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate
from tests.musicxml import note, rest, score, write

SHARD_MB = 0.25
SPLITS = ("train", "val", "test")


def generate(sources: Path, out: Path, workers: int) -> None:
    options = GenerateOptions(sources=(str(sources),), seed=3, patches_per_class=0, split=(0.5, 0.25, 0.25),
                              shards_mb=SHARD_MB)
    summary = run_generate(options, RunSettings(out=out, workers=workers, progress=False))
    assert summary.exit_code == 0


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> tuple[Path, Path]:
    scores = tmp_path_factory.mktemp("scores")
    write(scores, score(note("C", 5) + note("E", 5) + note("G", 5) + rest()), "triad.musicxml")
    write(scores, score(note("B", 4, alter=-1) + rest("half", 2) + note("F", 4), fifths=-1), "flat.musicxml")
    write(scores, score(note("G", 4, "half", 3, dots=1) + note("A", 4), note("C", 5, "whole", 4)), "dots.musicxml")
    write(scores, score(note("D", 4, "whole", 4), clef=("F", 4)), "bass.musicxml")
    shutil.copy(music21.corpus.getWork("bach/bwv66.6"), scores / "bwv66.6.mxl")
    shutil.copy(music21.corpus.getWork("bach/bwv269"), scores / "bwv269.mxl")
    root = tmp_path_factory.mktemp("datasets")
    generate(scores, root / "a", workers=2)
    generate(scores, root / "b", workers=1)
    return root / "a", root / "b"


def split_pages(out: Path, split: str) -> list[str]:
    return (out / "splits" / f"{split}.txt").read_text().split()


def shard_files(out: Path) -> list[Path]:
    return sorted((out / SHARD_FOLDER).glob("*.tar"))


def test_shards_are_byte_identical_across_runs(datasets):
    a, b = datasets
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in shard_files(a)}
    assert digest == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in shard_files(b)}
    assert len(digest) >= 4


def test_shards_hold_the_pages_in_split_order_within_the_size(datasets):
    out = datasets[0]
    catalogue = load_catalogue("deepscores")
    limit = SHARD_MB * MB
    several = 0
    for split in SPLITS:
        shards = sorted((out / SHARD_FOLDER).glob(f"{split}-*.tar"))
        assert [p.name for p in shards] == [f"{split}-{i:06d}.tar" for i in range(len(shards))]
        keys = []
        for shard in shards:
            samples = list(read_shard(shard))
            # Over the size only when one page alone is larger than it.
            assert shard.stat().st_size <= limit or len(samples) == 1, shard.name
            several += len(samples) > 1
            keys += [k for k, _ in samples]
            for key, members in samples:
                assert sorted(members) == ["class_mask.png", "image.png", "instance.png", "json"]
                assert members["image.png"] == (out / "images_png" / f"{key}.png").read_bytes()
                assert members["class_mask.png"] == (out / "pix_annotations_png" / f"{key}.png").read_bytes()
                assert members["instance.png"] == (out / "instance_png" / f"{key}.png").read_bytes()
                record = read_page_xml(out / "xml_annotations" / f"{key}.xml")
                annotation = json.loads(members["json"])
                assert annotation["boxes_xyxy"] == [list(o.bbox_xyxy) for o in record.objects]
                assert annotation["class_ids"] == [catalogue.id_of(o.class_name) for o in record.objects]
                assert (annotation["width"], annotation["height"], annotation["font"]) == (record.width, record.height, record.font)
        assert keys == split_pages(out, split)
    assert several >= 1, "no shard held two pages: the test does not exercise packing"
    # Reproducible members: no times, owners or modes that depend on the machine.
    with tarfile.open(shard_files(out)[0]) as tar:
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in tar.getmembers()} == {(0, 0, 0, "", "", 0o444)}


def test_size_arithmetic_matches_tarfile(tmp_path):
    sizes = [0, 1, 511, 512, 513, 20_000]
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i, size in enumerate(sizes):
            info = tarfile.TarInfo(f"k{i}.bin")
            info.size = size
            tar.addfile(info, io.BytesIO(b"x" * size))
    assert path.stat().st_size == archive_bytes(member_bytes(sizes))


def test_shards_option_is_validated():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(OptionsError, match="--shards"):
            GenerateOptions(shards_mb=bad).validate()


def test_loader_yields_every_page_once_per_epoch_across_two_workers(datasets):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from deepscores.data import ShardDataset

    out = datasets[0]
    catalogue = load_catalogue("deepscores")
    for split in SPLITS:
        pages = ShardDataset(out, split=split)
        loader = DataLoader(pages, batch_size=None, num_workers=2)
        for _epoch in range(2):
            seen = [sample["name"] for sample in loader]
            assert sorted(seen) == sorted(split_pages(out, split))  # each once: no page lost, none twice
    # The decoded arrays are the page files'.
    sample = next(iter(ShardDataset(out, split="train")))
    name = sample["name"]
    image, mask, instances = (read_png(out / f / f"{name}.png") for f in ("images_png", "pix_annotations_png", "instance_png"))
    assert sample["image"].dtype == torch.uint8 and tuple(sample["image"].shape) == (1, *image.shape)
    assert np.array_equal(sample["image"][0].numpy(), image)
    assert np.array_equal(sample["class_mask"].numpy(), mask)
    assert np.array_equal(sample["instance_map"].numpy(), instances.astype(np.int32))
    record = read_page_xml(out / "xml_annotations" / f"{name}.xml")
    assert sample["boxes"].tolist() == [list(map(float, o.bbox_xyxy)) for o in record.objects]
    assert sample["labels"].tolist() == [catalogue.id_of(o.class_name) for o in record.objects]
    # Every box's instance has its pixels (where visible) inside the box.
    ys, xs = np.nonzero(instances == int(sample["instance_ids"][0]))
    x0, y0, x1, y1 = record.objects[0].bbox_xyxy
    assert len(xs) == 0 or (x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1)


def test_webdataset_reads_the_shards(datasets):
    wds = pytest.importorskip("webdataset")
    out = datasets[0]
    urls = [str(p) for p in sorted((out / SHARD_FOLDER).glob("train-*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == split_pages(out, "train")
    assert {k for k in samples[0] if not k.startswith("__")} == {"image.png", "class_mask.png", "instance.png", "json"}
