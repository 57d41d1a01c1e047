"""Degraded pages (issue #9): presets as data, every effect measurably does something, labels stay
exact through geometric effects, photometric presets leave labels byte-identical, same seed → same bytes."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import music21
import numpy as np
import pytest
from scipy import ndimage

cv2 = pytest.importorskip("cv2")

from deepscores.annotate import score_pages  # noqa: E402
from deepscores.degrade.apply import degrade_page, page_seed  # noqa: E402
from deepscores.degrade.effects import EFFECTS  # noqa: E402
from deepscores.degrade.presets import PresetError, builtin_presets, load_preset, parse_preset  # noqa: E402
from deepscores.degrade.warp import MIN_SYMBOL_PX, forward_point  # noqa: E402
from deepscores.geometry import contains_squares  # noqa: E402
from deepscores.page import BACKGROUND_CLASS  # noqa: E402
from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate  # noqa: E402
from tests.musicxml import write_tiny_corpus  # noqa: E402


@pytest.fixture(scope="module")
def chorale():
    """A real corpus page: Bach's chorale BWV 66.6 (one page, ~220 symbols)."""
    (page,) = score_pages(music21.corpus.getWork("bach/bwv66.6"))
    return page


def preset_of(*effects: tuple[str, dict]) -> object:
    doc = {"name": "test", "effects": [{"effect": e, "p": 1.0, "params": params} for e, params in effects]}
    return parse_preset(json.dumps(doc), "test.yaml")


def assert_exact(page) -> None:
    """Ids 1..n, class mask = instance map through the class ids, every box = its pixel extent (±1 px)."""
    h, w = page.image.shape
    assert page.image.dtype == np.uint8 and page.instance_map.dtype == np.uint16
    assert [s.instance_id for s in page.symbols] == list(range(1, len(page.symbols) + 1))
    lut = np.full(len(page.symbols) + 1, BACKGROUND_CLASS, np.uint8)
    lut[1:] = [s.class_id for s in page.symbols]
    assert int(page.instance_map.max()) <= len(page.symbols)
    assert np.array_equal(lut[page.instance_map], page.class_mask)
    for symbol, ext in zip(page.symbols, ndimage.find_objects(page.instance_map, max_label=len(page.symbols))):
        assert ext is not None, symbol
        ys, xs = ext
        x0, y0, x1, y1 = symbol.bbox_xyxy
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert max(abs(xs.start - x0), abs(ys.start - y0), abs(xs.stop - x1), abs(ys.stop - y1)) <= 1, symbol


# -- presets ----------------------------------------------------------------------------------------
def test_builtin_presets_load():
    assert {"light", "scan", "photo"} <= set(builtin_presets())
    assert load_preset("none") is None
    assert not load_preset("light").geometric and load_preset("scan").geometric and load_preset("photo").geometric


@pytest.mark.parametrize("doc, key, cause", [
    ({"effects": [{"effect": "blurr"}]}, "effects[0].effect", "unknown effect 'blurr'"),
    ({"effects": [{"effect": "paper"}, {"effect": "blur", "params": {"sigma_px": 9}}]},
     "effects[1].params.sigma_px", "9.0 is outside the allowed range [0.0, 6.0]"),
    ({"effects": [{"effect": "blur", "params": {"radius": 1}}]}, "effects[0].params.radius", "unknown parameter of blur"),
    ({"effects": [{"effect": "jpeg", "p": 1.5}]}, "effects[0].p", "outside the allowed range [0, 1]"),
    ({"effects": [{"effect": "jpeg", "params": {"quality": [90, 40]}}]}, "effects[0].params.quality", "above high"),
    ({"effect": []}, "effect", "unknown key"),
])
def test_bad_preset_file_is_one_line_naming_file_and_key(tmp_path, doc, key, cause):
    path = tmp_path / "mine.yaml"
    path.write_text(json.dumps(doc))
    with pytest.raises(PresetError) as info:
        GenerateOptions(degrade=str(path)).validate()
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: {key}: ") and cause in message


def test_unknown_preset_name():
    with pytest.raises(PresetError, match="no such preset; built-in presets: none, light, photo, scan"):
        load_preset("scanned")


# -- every effect does something measurable ------------------------------------------------------
def _laplacian_var(image):
    return float(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F).var())


def _blockiness(image):
    """Mean jump across 8-px block edges over the mean jump inside blocks (JPEG's signature)."""
    d = np.abs(np.diff(image.astype(np.float32), axis=1))
    at_edges = d[:, 7::8].mean()
    inside = np.delete(d, np.s_[7::8], axis=1).mean()
    return at_edges / inside


PAPER = (slice(2400, 2600), slice(104, 1800))  # a blank strip at the foot of the chorale page (8-px aligned)


# effect: (params, statistic(before, after) that must hold)
CHECKS = {
    "paper": ({"brightness": 0.85, "texture": 0.05, "grain": 0.05},
              lambda a, b: b[PAPER].mean() < 0.9 * a[PAPER].mean() and b[PAPER].std() > 2),
    "lighting": ({"gradient": 0.4, "vignette": 0.4}, lambda a, b: b[PAPER].std() > 5 and b.mean() < a.mean() - 10),
    "shadow": ({"strength": 0.5, "coverage": 0.5, "softness": 0.02}, lambda a, b: np.percentile(b, 25) < 160),
    "ink": ({"fade": 0.5, "morph": 0.0, "bleed_px": 0.0}, lambda a, b: b[a < 50].mean() > a[a < 50].mean() + 100),
    "blur": ({"sigma_px": 1.5, "motion_px": 4.0}, lambda a, b: _laplacian_var(b) < 0.3 * _laplacian_var(a)),
    # White paper clips half of the noise away: std of the rest ≈ 0.58 σ.
    "noise": ({"sigma": 10.0, "speckle": 0.001}, lambda a, b: 4 < (b[PAPER].astype(float) - a[PAPER]).std() < 8),
    # On noisy paper (BASE below), JPEG smooths inside its 8×8 blocks and leaves jumps at their edges.
    "jpeg": ({"quality": 30}, lambda a, b: _blockiness(b[PAPER]) > 2 * _blockiness(a[PAPER])),
    "resample": ({"scale": 0.4}, lambda a, b: _laplacian_var(b) < 0.5 * _laplacian_var(a)),
    "binarize": ({"threshold": 128}, lambda a, b: set(np.unique(b)) == {0, 255} and len(np.unique(a)) > 2),
    "bleed_through": ({"alpha": 0.3, "blur_px": 1.0, "offset_px": 0},
                      lambda a, b: (b[:, ::-1][a < 100] < 250).mean() > 0.5 and np.array_equal(np.minimum(a, b), b)),
    "stains": ({"count": 3, "strength": 0.4, "radius": 0.1}, lambda a, b: (b < a - 20).sum() > 10_000),
    "folds": ({"count": 2, "strength": 0.4}, lambda a, b: (b < a - 20).sum() > 2 * 2679),
    "rotate": ({"angle_deg": 2.0}, None),
    "skew": ({"shear_deg": 2.0}, None),
    "perspective": ({"jitter": 0.03, "margin": 0.03, "background": 60}, lambda a, b: b[0, 0] == 60 and b[-1, -1] == 60),
    "curl": ({"amplitude_px": 15.0, "wavelength": 1.0}, None),
}


#: Effects applied first (to both the before and the after page) where the check needs them.
BASE = {"jpeg": [("noise", {"sigma": 8.0, "speckle": 0.0})]}


def test_every_effect_has_a_check():
    assert set(CHECKS) == set(EFFECTS)


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_effect_changes_the_page_measurably(chorale, name):
    params, check = CHECKS[name]
    base = BASE.get(name, [])
    start = degrade_page(chorale, preset_of(*base), seed=7)[0] if base else chorale
    page, record = degrade_page(chorale, preset_of(*base, (name, params)), seed=7)
    assert record.effects[-1].applied and record.effects[-1].params == pytest.approx(params)
    before, after = start.image, page.image
    assert np.abs(after.astype(int) - before).mean() > 0.5  # an effect that silently does nothing fails
    if check is not None:
        assert check(before, after)
    if EFFECTS[name].kind == "geometric":
        assert not np.array_equal(page.instance_map, chorale.instance_map)
        assert_exact(page)
    else:
        assert page.instance_map is chorale.instance_map and page.class_mask is chorale.class_mask
        assert page.symbols is chorale.symbols


# -- ground truth through the presets ---------------------------------------------------------------
@pytest.mark.parametrize("preset", ["light", "scan", "photo"])
def test_presets_keep_labels_exact_and_are_deterministic(chorale, preset):
    for seed in range(2):
        s = page_seed(seed, chorale.score_id, chorale.page_number)
        page, record = degrade_page(chorale, load_preset(preset), s)
        again, record2 = degrade_page(chorale, load_preset(preset), s)
        assert record.to_json() == record2.to_json()
        for a, b in ((page.image, again.image), (page.class_mask, again.class_mask), (page.instance_map, again.instance_map)):
            assert a.tobytes() == b.tobytes()
        assert page.symbols == again.symbols
        assert_exact(page)
        assert len(page.symbols) + sum(record.dropped.values()) == len(chorale.symbols)


def test_strong_warp_drops_symbols_off_the_page_and_counts_them(chorale):
    preset = preset_of(("perspective", {"jitter": 0.0, "margin": 0.0, "background": 0}), ("rotate", {"angle_deg": 20.0}))
    page, record = degrade_page(chorale, preset, seed=1)
    assert_exact(page)
    assert record.dropped.get("off_page", 0) + record.dropped.get("cut", 0) > 0
    assert len(page.symbols) + sum(record.dropped.values()) == len(chorale.symbols)
    counts = np.bincount(page.instance_map.ravel())[1:]
    assert counts.min() >= MIN_SYMBOL_PX


def test_known_rotation_moves_notehead_centres_where_it_sends_them(chorale):
    angle = 3.0
    preset = preset_of(("rotate", {"angle_deg": angle}))
    page, record = degrade_page(chorale, preset, seed=0)
    assert not record.dropped
    # The page centre is fixed and y points down: counter-clockwise as seen.
    cx, cy = chorale.width / 2, chorale.height / 2
    a = math.radians(angle)
    heads = [(s, t) for s, t in zip(chorale.symbols, page.symbols) if s.class_name == "noteheadBlack" and not s.occluded]
    assert len(heads) > 50
    for before, after in heads:
        x = (before.bbox_xyxy[0] + before.bbox_xyxy[2]) / 2
        y = (before.bbox_xyxy[1] + before.bbox_xyxy[3]) / 2
        expected = (cx + (x - cx) * math.cos(a) + (y - cy) * math.sin(a), cy - (x - cx) * math.sin(a) + (y - cy) * math.cos(a))
        assert forward_point([EFFECTS["rotate"].fn(chorale.image.shape, {"angle_deg": angle}, None)], x, y) == \
            pytest.approx(expected, abs=1e-6)
        got = ((after.bbox_xyxy[0] + after.bbox_xyxy[2]) / 2, (after.bbox_xyxy[1] + after.bbox_xyxy[3]) / 2)
        assert got == pytest.approx(expected, abs=1.0), before
    # A rotated notehead's new box is its warped pixels' extent, not the rotated old box (which is larger).
    x0, y0, x1, y1 = heads[0][0].bbox_xyxy
    w, h = x1 - x0, y1 - y0
    rotated_corners_w = w * math.cos(a) + h * math.sin(a)
    assert heads[0][1].width <= math.ceil(rotated_corners_w) + 1


def test_oriented_boxes_recomputed_from_warped_pixels(tmp_path):
    (page,) = score_pages(music21.corpus.getWork("bach/bwv66.6"), full_instances=True)
    degraded, _ = degrade_page(page, preset_of(("rotate", {"angle_deg": 4.0})), seed=0)
    assert_exact(degraded)
    for symbol, (box, mask) in zip(degraded.symbols, degraded.instance_masks):
        assert box == symbol.bbox_xyxy and symbol.area_px == int(mask.sum()) > 0
        assert contains_squares(symbol.o_bbox, mask, box[0], box[1])
    # Recomputed, not carried over from the clean page.
    assert sum(a.o_bbox != b.o_bbox for a, b in zip(page.symbols, degraded.symbols)) > 0.9 * len(page.symbols)


# -- the generator --------------------------------------------------------------------------------
def _generate(corpus: Path, out: Path, degrade: str = "none", workers: int = 1):
    options = GenerateOptions(sources=(str(corpus),), seed=3, degrade=degrade, patches_per_class=2)
    return run_generate(options, RunSettings(out=out, workers=workers, progress=False))


def _files(root: Path, folder: str) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    corpus = write_tiny_corpus(tmp_path_factory.mktemp("scores"))
    clean = tmp_path_factory.mktemp("clean")
    assert _generate(corpus, clean).exit_code == 0
    return corpus, clean


def test_light_leaves_labels_byte_identical(tiny, tmp_path):
    corpus, clean = tiny
    out = tmp_path / "light"
    assert _generate(corpus, out, "light").exit_code == 0
    for folder in ("pix_annotations_png", "instance_png", "xml_annotations", "coco", "yolo/labels", "splits"):
        assert _files(out, folder) == _files(clean, folder), folder
    images, clean_images = _files(out, "images_png"), _files(clean, "images_png")
    assert images.keys() == clean_images.keys() and all(images[k] != clean_images[k] for k in images)
    # Patches are cut from the degraded pages.
    assert _files(out, "classification_data") != _files(clean, "classification_data")
    records = [json.loads(p.read_text()) for p in sorted((out / "degrade").glob("*.json"))]
    assert len(records) == len(images) and all(r["preset"] == "light" and r["seed"] for r in records)
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["options"]["degrade"] == "light" and dataset["degrade"]["name"] == "light"


def test_scan_same_seed_same_bytes_any_workers(tiny, tmp_path):
    corpus, _ = tiny
    a, b = tmp_path / "a", tmp_path / "b"
    assert _generate(corpus, a, "scan", workers=2).exit_code == 0
    assert _generate(corpus, b, "scan", workers=1).exit_code == 0
    files_a = {p.relative_to(a).as_posix(): p.read_bytes() for p in sorted(a.rglob("*")) if p.is_file() and "report" not in p.parts}
    files_b = {p.relative_to(b).as_posix(): p.read_bytes() for p in sorted(b.rglob("*")) if p.is_file() and "report" not in p.parts}
    assert files_a == files_b


def test_degrade_command_and_show_side_by_side(tiny, tmp_path):
    from typer.testing import CliRunner

    from deepscores.cli import app
    from deepscores.show import render_show
    from deepscores.validate import validate_dataset

    _, clean = tiny
    out = tmp_path / "scan"
    result = CliRunner().invoke(app, ["degrade", str(clean), "--out", str(out), "--preset", "scan", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert validate_dataset(out) == []
    # The same pages as generate --degrade scan with the same options and seed.
    direct = tmp_path / "direct"
    corpus, _ = tiny
    _generate(corpus, direct, "scan")
    for folder in ("images_png", "instance_png", "pix_annotations_png", "xml_annotations", "degrade", "coco"):
        assert _files(out, folder) == _files(direct, folder), folder
    rgb, layout = render_show(out, 0)
    assert "side_by_side" in layout.panels
    bad = tmp_path / "bad.yaml"
    bad.write_text("effects:\n  - effect: curl\n    params: {amplitude_px: 500}\n")
    result = CliRunner().invoke(app, ["degrade", str(clean), "--out", str(tmp_path / "x"), "--preset", str(bad)])
    assert result.exit_code == 1 and "effects[0].params.amplitude_px: 500.0 is outside" in result.output
    assert "Traceback" not in result.output


def test_degrade_keeps_the_sidecars_of_an_older_obb_anns_dataset(tiny, tmp_path):
    """Before the RLE sidecar followed COCO, an obb-anns run without COCO wrote one too; degrading such
    a dataset copies its sidecars instead of failing on a missing folder."""
    from deepscores.degrade.dataset import degrade_dataset

    corpus, _ = tiny
    src, out = tmp_path / "src", tmp_path / "out"
    options = GenerateOptions(sources=(str(corpus),), seed=3, patches_per_class=0, classes="deepscoresv2",
                              formats=("deepscores", "obb-anns", "coco"))
    assert run_generate(options, RunSettings(out=src, workers=1, progress=False)).exit_code == 0
    record = json.loads((src / "dataset.json").read_text())
    record["options"]["formats"] = ["deepscores", "obb-anns"]  # as the older release wrote it
    (src / "dataset.json").write_text(json.dumps(record))
    sidecars = _files(src, "instance_rle")
    assert sidecars
    degrade_dataset(src, out, "light")
    assert _files(out, "instance_rle") == sidecars
