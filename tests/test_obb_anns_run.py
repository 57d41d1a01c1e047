"""The DeepScoresV2 export from a whole `deepscores generate` run: format options, which files each
export set writes, COCO with a v2 vocabulary, and `deepscores validate` on the v2 files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_util

from deepscores.errors import OptionsError
from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate
from tests.musicxml import note, rest, score, write


# -- options and a whole run ---------------------------------------------------------------------------
def test_format_names_are_validated():
    with pytest.raises(OptionsError, match="unknown --format 'pdf'"):
        GenerateOptions(formats=("deepscores", "pdf")).validate()
    with pytest.raises(OptionsError, match="obb-anns needs --classes"):
        GenerateOptions(formats=("obb-anns",), classes="deepscores").validate()
    GenerateOptions(formats=("obb-anns", "coco"), classes="deepscoresv2").validate()


def _three_score_v2_run(tmp_path, formats=("deepscores", "obb-anns")):
    """Three one-page scores, one per split, generated as v2 (by default with the obb_anns export only)."""
    scores = tmp_path / "scores"
    scores.mkdir()
    write(scores, score(note("C", 5) + note("E", 5) + note("G", 5) + rest()), "a.musicxml")
    write(scores, score(note("B", 4) + note("D", 5, "half", 2) + rest()), "b.musicxml")
    write(scores, score(note("F", 4, "whole", 4)), "c.musicxml")
    options = GenerateOptions(sources=(str(scores),), classes="deepscoresv2", patches_per_class=0, seed=1,
                              split=(0.34, 0.33, 0.33), formats=formats)
    return run_generate(options, RunSettings(out=tmp_path / "ds", workers=1, progress=False))


def test_generate_writes_obb_anns_by_score_and_skips_unasked_formats(tmp_path):
    summary = _three_score_v2_run(tmp_path)
    out = tmp_path / "ds"
    assert summary.exit_code == 0 and summary.pages == 3
    assert not (out / "coco").exists() and not (out / "yolo").exists()
    for split in ("train", "val", "test"):
        names = (out / "splits" / f"{split}.txt").read_text().split()
        data = json.loads((out / "obb_anns" / f"deepscores_{split}.json").read_text())
        assert [i["filename"] for i in data["images"]] == [f"{n}.png" for n in names]
        assert len(names) == 1
        for name in names:
            assert (out / "obb_anns" / "segmentation" / f"{name}_seg.png").is_file()
        # Only COCO's segmentation reads the RLE sidecar; the obb_anns areas come from the XML.
        assert not (out / "instance_rle").exists()
        table = data["categories"]
        noteheads = [a for a in data["annotations"].values() if table[a["cat_id"][0]]["name"].startswith("notehead")]
        assert noteheads and all("rel_position:" in a["comments"] for a in noteheads)


def test_v2_coco_without_obb_anns_still_gets_oriented_boxes_and_masks(tmp_path):
    """COCO with a v2 vocabulary carries o_bbox and a segmentation per annotation, with or without the
    obb_anns export; the sidecar's masks hold exactly the XML's ink areas."""
    from deepscores.formats.deepscores_xml import read_page_xml

    assert GenerateOptions(classes="deepscoresv2").full_instances and GenerateOptions(classes="deepscoresv2").instance_rle
    assert not GenerateOptions().full_instances and not GenerateOptions().instance_rle
    obb_only = GenerateOptions(classes="deepscoresv2", formats=("deepscores", "obb-anns"))
    assert obb_only.full_instances and not obb_only.instance_rle
    _three_score_v2_run(tmp_path, formats=("deepscores", "coco"))
    out = tmp_path / "ds"
    assert not (out / "obb_anns").exists()
    for split in ("train", "val", "test"):
        data = json.loads((out / "coco" / f"{split}.json").read_text())
        (image,) = data["images"]
        name = image["file_name"].rsplit("/", 1)[-1][: -len(".png")]
        record = read_page_xml(out / "xml_annotations" / f"{name}.xml")
        areas = [o.area_px for o in record.objects]
        assert len(data["annotations"]) == len(areas) and all(a > 0 for a in areas)
        assert [int(mask_util.area({**a["segmentation"], "counts": a["segmentation"]["counts"].encode()}))
                for a in data["annotations"]] == areas
        assert all(len(a["o_bbox"]) == 8 for a in data["annotations"])
    from deepscores.validate import validate_dataset

    assert validate_dataset(out) == []


def test_validate_checks_the_v2_files(tmp_path):
    """A generated v2 dataset validates clean; a mask that lost pixels, an oriented-box file whose
    box moved and a missing segmentation PNG are each found, in their own file."""
    import gzip

    from deepscores.validate import validate_dataset

    _three_score_v2_run(tmp_path, formats=("deepscores", "obb-anns", "coco"))
    out = tmp_path / "ds"
    assert validate_dataset(out) == []
    name = (out / "splits" / "train.txt").read_text().split()[0]
    # A mask with one pixel fewer than the XML's <area>.
    rle_path = out / "instance_rle" / f"{name}.json.gz"
    data = json.loads(gzip.decompress(rle_path.read_bytes()))
    first = {"size": data["size"], "counts": data["counts"][0].encode()}
    pixels = mask_util.decode(first)
    ys, xs = np.nonzero(pixels)
    pixels[ys[0], xs[0]] = 0
    data["counts"][0] = mask_util.encode(np.asfortranarray(pixels))["counts"].decode()
    rle_path.write_bytes(gzip.compress(json.dumps(data).encode()))
    # An annotation whose a_bbox moved by 3 px.
    ann_path = out / "obb_anns" / "deepscores_test.json"
    anns = json.loads(ann_path.read_text())
    first_id = anns["images"][0]["ann_ids"][0]
    anns["annotations"][first_id]["a_bbox"][0] += 3
    ann_path.write_text(json.dumps(anns))
    # A segmentation PNG gone.
    val_page = (out / "splits" / "val.txt").read_text().split()[0]
    (out / "obb_anns" / "segmentation" / f"{val_page}_seg.png").unlink()
    defects = validate_dataset(out)
    assert {d.file for d in defects} == {f"instance_rle/{name}.json.gz", "obb_anns/deepscores_test.json",
                                         f"obb_anns/segmentation/{val_page}_seg.png"}
    assert any("pixels, the XML's area is" in d.message for d in defects)
    assert any("a_bbox" in d.message for d in defects)
    # An annotation without its o_bbox: one defect naming the file, not a crash of validate.
    val_path = out / "obb_anns" / "deepscores_val.json"
    anns = json.loads(val_path.read_text())
    del anns["annotations"][anns["images"][0]["ann_ids"][0]]["o_bbox"]
    val_path.write_text(json.dumps(anns))
    broken = [d for d in validate_dataset(out) if d.file == "obb_anns/deepscores_val.json"]
    assert len(broken) == 1 and "not an obb_anns annotation: KeyError" in broken[0].message
