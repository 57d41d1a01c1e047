"""`compute_stats` / `write_report` on hand-made annotation files with known counts, on a generated
dataset (XML and COCO paths agree), and on damaged input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepscores.errors import DeepScoresError
from deepscores.formats.deepscores_xml import write_page_xml
from deepscores.page import Page, Symbol
from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate
from deepscores.plots import PLOT_SIZE_PX
from deepscores.report import write_report
from deepscores.stats import PAPER, compute_stats
from tests.musicxml import note, rest, score, write

W, H = 1000, 500
A, B = "a" * 16, "b" * 16
# page → (font, [(class, (x0, y0, x1, y1))])
PAGES = {
    f"{A}-p001-bravura": ("Bravura", [("noteheadBlack", (10, 10, 20, 20)), ("noteheadBlack", (30, 10, 40, 20)),
                                      ("noteheadBlack", (50, 10, 60, 20)), ("gClef", (0, 0, 20, 50))]),
    f"{A}-p002-bravura": ("Bravura", [("noteheadBlack", (10, 10, 20, 20)), ("keyFlat", (100, 100, 105, 120))]),
    f"{B}-p001-leland": ("Leland", [("noteheadBlack", (10 * i, 10, 10 * i + 10, 20)) for i in range(4)]
                         + [("restQuarter", (200, 200, 208, 224)), ("restQuarter", (300, 200, 308, 224))]),
}


def _page(font: str, symbols: list[tuple[str, tuple[int, int, int, int]]], score_id: str) -> Page:
    blank = np.zeros((H, W), np.uint8)
    syms = [Symbol(0, name, box, i + 1, font) for i, (name, box) in enumerate(symbols)]
    return Page(blank, blank, blank.astype(np.uint16), syms, font, score_id, 1)


@pytest.fixture
def hand(tmp_path) -> Path:
    root = tmp_path / "hand"
    for name, (font, symbols) in PAGES.items():
        write_page_xml(root / "xml_annotations" / f"{name}.xml", _page(font, symbols, name[:16]), name)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text(f"{A}-p001-bravura\n{A}-p002-bravura\n")
    (root / "splits" / "val.txt").write_text("")
    (root / "splits" / "test.txt").write_text(f"{B}-p001-leland\n")
    manifest = [
        {"source": "/usr/lib/python3.11/site-packages/music21/corpus/bach/bwv1.mxl",
         "pages": [{"name": f"{A}-p001-bravura"}, {"name": f"{A}-p002-bravura"}]},
        {"source": "/home/me/myscores/song.musicxml", "pages": [{"name": f"{B}-p001-leland"}]},
    ]
    (root / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    return root


def test_table_ii_and_beyond_exactly(hand):
    s = compute_stats(hand)
    assert (s.pages, s.scores, s.symbols, s.classes_present) == (3, 2, 12, 4)
    # Per sheet: 4, 2, 6. Population std.
    assert s.symbols_per_sheet == {"mean": 4.0, "std": pytest.approx(math.sqrt(8 / 3)), "max": 6.0, "min": 2.0,
                                   "median": 4.0}
    # Per class: noteheadBlack 8, restQuarter 2, gClef 1, keyFlat 1.
    assert s.class_counts == {"noteheadBlack": 8, "restQuarter": 2, "gClef": 1, "keyFlat": 1}
    assert list(s.class_counts) == ["noteheadBlack", "restQuarter", "gClef", "keyFlat"]
    assert s.symbols_per_class == {"mean": 3.0, "std": pytest.approx(math.sqrt(34 / 4)), "max": 8.0, "min": 1.0,
                                   "median": 1.5}
    assert s.skew == {"top_class": "noteheadBlack", "top_class_share": 8 / 12, "top_10pct_classes": 1,
                      "top_10pct_share": 8 / 12, "classes_below": {"18": 4, "100": 4, "1000": 4}}
    assert "noteheadHalf" in s.classes_absent and "noteheadBlack" not in s.classes_absent
    assert len(s.classes_absent) == 124 - 4 and s.classes_unknown == []
    # Areas: 9 × 100 (8 noteheads + keyFlat 5×20), 2 × 192 (rests 8×24), 1 × 1000 (gClef 20×50).
    area = s.object_area_px
    assert (area["min"], area["median"], area["max"], area["median_method"]) == (100, 100.0, 1000, "exact")
    assert sum(area["histogram"]["counts"]) == 12 and area["histogram"]["counts"][200] == 9  # bin of 10^2
    assert s.relative_size_per_class["noteheadBlack"] == {"median_width": 10 / W, "median_height": 10 / H}
    assert s.relative_size_per_class["gClef"] == {"median_width": 20 / W, "median_height": 50 / H}
    assert s.image_sizes == {"1000x500": 3}
    assert s.by_font == {"Bravura": {"pages": 2, "symbols": 6, "symbols_per_page": 3.0},
                         "Leland": {"pages": 1, "symbols": 6, "symbols_per_page": 6.0}}
    assert s.by_split == {"test": {"pages": 1, "symbols": 6, "symbols_per_page": 6.0},
                          "train": {"pages": 2, "symbols": 6, "symbols_per_page": 3.0}}
    assert s.by_source == {"bach": {"pages": 2, "symbols": 6, "symbols_per_page": 3.0},
                           "myscores": {"pages": 1, "symbols": 6, "symbols_per_page": 6.0}}
    assert s.defects == []


def test_histogram_medians_past_the_exact_limit(hand):
    exact, binned = compute_stats(hand), compute_stats(hand, exact_limit=5)
    assert binned.object_area_px["median_method"].startswith("histogram")
    assert binned.object_area_px["median"] == pytest.approx(100, rel=0.012)
    assert (binned.object_area_px["min"], binned.object_area_px["max"]) == (100, 1000)
    for name, sizes in exact.relative_size_per_class.items():
        for key, value in sizes.items():
            assert abs(binned.relative_size_per_class[name][key] - value) <= 1 / 4096
    assert binned.symbols_per_sheet == exact.symbols_per_sheet and binned.class_counts == exact.class_counts


def test_report_files(hand, tmp_path):
    s = compute_stats(hand)
    paths = write_report(s, tmp_path / "report", compare_paper=True)
    assert [p.name for p in paths] == ["stats.json", "stats.md", *PLOT_SIZE_PX]
    for name, size in PLOT_SIZE_PX.items():
        with Image.open(tmp_path / "report" / name) as image:
            assert image.size == size
    data = json.loads((tmp_path / "report" / "stats.json").read_text())
    assert list(data)[:4] == ["dataset", "catalogue", "pages", "scores"]  # the dataclass's order, not sorted
    rows = {r["quantity"]: r for r in data["paper_comparison"]}
    assert rows["symbols_per_sheet.mean"] == {"quantity": "symbols_per_sheet.mean", "ours": 4.0, "paper": 243,
                                              "ratio": 4 / 243}
    assert rows["symbols"]["paper"] == PAPER["symbols"] == 80_000_000
    md = (tmp_path / "report" / "stats.md").read_text()
    assert "| median | 4 | 1.5 |" in md and "Compared with the paper" in md and "## Defects" in md
    # The same stats give the same bytes.
    again = write_report(s, tmp_path / "again", compare_paper=True)
    assert again[0].read_bytes() == paths[0].read_bytes()


def test_not_a_dataset(tmp_path):
    with pytest.raises(DeepScoresError) as info:
        compute_stats(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "not a deepscores dataset" in message and "\n" not in message


def test_corrupt_and_missing_xml_are_defects(hand):
    (hand / "xml_annotations" / f"{A}-p002-bravura.xml").write_bytes(b"<annotation><size><width>10")
    (hand / "splits" / "val.txt").write_text("cccccccccccccccc-p001-leland\n")
    s = compute_stats(hand)
    assert s.pages == 2 and s.symbols == 10
    defects = {d["page"]: d for d in s.defects}
    assert set(defects) == {f"{A}-p002-bravura", "cccccccccccccccc-p001-leland"}
    assert "malformed XML" in defects[f"{A}-p002-bravura"]["error"]
    assert "no such file" in defects["cccccccccccccccc-p001-leland"]["error"]
    assert all("\n" not in d["error"] for d in s.defects)


def test_readers_agree_with_read_page_xml(hand):
    """An XML the fast path rejects (other layout) is read by read_page_xml with the same result."""
    path = hand / "xml_annotations" / f"{B}-p001-leland.xml"
    fast = compute_stats(hand)
    path.write_bytes(path.read_bytes().replace(b"<name>", b"<name >"))
    slow = compute_stats(hand)
    assert slow == fast


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scores")
    write(folder, score(note("C", 5) + note("E", 5) + note("G", 5) + rest()), "triad.musicxml")
    write(folder, score(note("B", 4, alter=-1) + note("E", 5, alter=-1, accidental="flat") + rest("half", 2),
                        fifths=-1), "flats.musicxml")
    out = tmp_path_factory.mktemp("ds") / "ds"
    run_generate(GenerateOptions(sources=(str(folder),), patches_per_class=2, split=(0.5, 0.0, 0.5)),
                 RunSettings(out=out, workers=1, progress=False))
    return out


def test_generated_dataset_xml_and_coco_agree(generated, tmp_path):
    s = compute_stats(generated, progress=True)
    meta = json.loads((generated / "dataset.json").read_text())
    assert s.pages == meta["counts"]["pages"] == 2 and s.symbols == meta["counts"]["symbols"]
    assert s.class_counts == dict(sorted(meta["counts"]["per_class"].items(), key=lambda kv: (-kv[1], kv[0])))
    sources = [json.loads(line)["source"] for line in (generated / "manifest.jsonl").read_text().splitlines()]
    assert list(s.by_source) == [Path(sources[0]).parent.name]  # user files: their folder's name
    assert sum(v["pages"] for v in s.by_split.values()) == 2 and "none" not in s.by_split
    coco_only = tmp_path / "coco_only"
    shutil.copytree(generated / "coco", coco_only / "coco")
    c = compute_stats(coco_only)
    assert (c.pages, c.symbols, c.class_counts, c.object_area_px) == (s.pages, s.symbols, s.class_counts,
                                                                       s.object_area_px)
    assert c.relative_size_per_class == s.relative_size_per_class
