"""Composed scores in a run (``--corpus synthetic``, ``--synthetic K``) and balancing
(``--min-per-class N``): every producible class reaches its quota, deterministically and resumably."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from deepscores.classes import load_catalogue
from deepscores.pipeline.run import GenerateOptions, RunSettings, read_manifest, run_generate
from tests.musicxml import write_tiny_corpus
from tests.test_generate import tree_digest


def _generate(out: Path, workers: int = 2, resume: bool = False, **options):
    options = GenerateOptions(**{"patches_per_class": 2, "formats": ("deepscores", "coco"), "seed": 1, **options})
    return run_generate(options, RunSettings(out=out, workers=workers, progress=False, resume=resume))


def test_synthetic_corpus_is_deterministic_and_keeps_its_scores(tmp_path):
    one = _generate(tmp_path / "one", workers=2, corpus="synthetic", pages=5)
    two = _generate(tmp_path / "two", workers=1, corpus="synthetic", pages=5)
    assert one.pages == two.pages == 5 and not one.failures
    assert tree_digest(tmp_path / "one") == tree_digest(tmp_path / "two")
    kept = {r.score_id for r in read_manifest(tmp_path / "one").values() if r.status == "ok" and r.pages}
    # Exactly the music of the dataset's pages is kept, named by its content.
    assert {p.stem for p in (tmp_path / "one" / "composed").glob("*.mei")} == kept
    data = json.loads((tmp_path / "one" / "dataset.json").read_text())
    assert data["composed"]["pages"] == 5


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    root = tmp_path_factory.mktemp("balanced")
    (root / "src").mkdir()
    write_tiny_corpus(root / "src")
    options = dict(sources=(str(root / "src"),), pages=45, min_per_class=1, balance_share=0.95)
    summary = _generate(root / "a", **options)
    return root, options, summary


def test_a_small_balanced_run_meets_its_quota(balanced):
    root, _, summary = balanced
    data = json.loads((root / "a" / "dataset.json").read_text())
    counts = Counter(data["counts"]["per_class"])
    # Every one of the 124 classes, from three tiny scores and composed ones, within 45 pages.
    assert summary.deficits == {} and data["composed"]["classes_below_minimum"] == {}
    assert all(counts[name] >= 1 for name in load_catalogue().names)
    assert summary.pages <= 45 and data["composed"]["pages"] == summary.pages - 3
    sources = [r.source for r in read_manifest(root / "a").values() if r.status == "ok" and r.pages]
    # The plan's own scores first (in the seeded order of a sample), then the rounds' composed ones.
    assert {Path(s).name for s in sources[:3]} == {"triad.musicxml", "flats.musicxml", "dots.musicxml"}
    assert all(s.startswith("synthetic:1-") for s in sources[3:])


def test_a_balanced_run_resumes_to_the_same_bytes(balanced):
    root, options, _ = balanced
    # Drop the second half of the manifest (scores of the balancing rounds): resume redoes them.
    lines = (root / "a" / "manifest.jsonl").read_text().splitlines()
    copy = root / "b"
    import shutil

    shutil.copytree(root / "a", copy)
    (copy / "manifest.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    _generate(copy, workers=1, resume=True, **options)
    assert tree_digest(copy) == tree_digest(root / "a")
