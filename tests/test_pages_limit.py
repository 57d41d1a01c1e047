"""`generate --pages N`: each score is drawn only as far as the dataset can use it, and the dataset's
counts cover exactly its pages, whichever worker finishes first."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import music21
import pytest

from deepscores.annotate import score_pages
from deepscores.engrave import EngraveOptions
from deepscores.pipeline.quota import Acceptance, Caps
from deepscores.pipeline.run import GenerateOptions, RunSettings, plan_sources, run_generate
from deepscores.pipeline.tasks import PageSummary, ScoreResult, ScoreTask, _process
from tests.test_generate import tree_digest

BWV248 = music21.corpus.getWork("bach/bwv248.23-2.mxl")  # 5 pages; duplicates removed on pages 3 and 4
JOPLIN = music21.corpus.getWork("joplin/maple_leaf_rag.mxl")  # 3 pages; unmapped glyphs on pages 1 and 2


def _ok(source: str, score_id: str, pages: int) -> ScoreResult:
    return ScoreResult(source, "ok", score_id, pages=[PageSummary(f"{score_id}-{i}", i, 1, {}) for i in range(pages)])


def test_pages_bound_counts_the_earlier_results_that_are_in():
    plan = ["a", "b", "c", "d", "e"]
    results = {"b": _ok("b", "B", 3), "c": ScoreResult("c", "error", error="c: bad")}
    acceptance = Acceptance(plan, results, Caps(10))
    assert acceptance.pages_needed_at_most("a") == 10  # nothing before it
    assert acceptance.pages_needed_at_most("d") == 7   # a is still out (0 or more pages), c failed
    results["a"] = _ok("a", "B", 2)                    # the same content as b, cut shorter: counted once
    assert acceptance.pages_needed_at_most("d") == 8
    results["d"] = _ok("d", "D", 9)
    assert acceptance.pages_needed_at_most("e") == 0   # never below zero
    assert Acceptance(plan, results, Caps(None)).pages_needed_at_most("e") is None
    # Asked about a score inside the finished prefix, it counts only what comes before that score.
    inside = Acceptance(["x", "y", "z"], {"x": _ok("x", "X", 2), "y": _ok("y", "Y", 3)}, Caps(4))
    assert inside.final() and inside.pages_needed_at_most("y") == 2 and inside.pages_needed_at_most("z") == 0


def test_a_task_makes_and_writes_only_its_first_pages(tmp_path):
    for folder in ("images_png", "pix_annotations_png", "instance_png", "xml_annotations"):
        (tmp_path / folder).mkdir()
    result = _process(ScoreTask(str(BWV248), str(tmp_path), ("Leipzig",), 0, max_pages=2))
    assert [p.page_number for p in result.pages] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "xml_annotations").iterdir()) == [f"{p.name}.xml" for p in result.pages]
    none = _process(ScoreTask(str(BWV248), str(tmp_path), ("Leipzig",), 0, max_pages=0))
    assert none.status == "ok" and none.pages == [] and none.score_id == result.score_id


def _run(out: Path, pages: int, workers: int, seen: list[ScoreResult]):
    # The diversity caps are off: this is the bound and the cut of the last score alone.
    options = GenerateOptions(sources=(str(BWV248), str(JOPLIN)), pages=pages, patches_per_class=2, seed=3,
                              max_pages_per_score=0, max_collection_share=0, max_font_share=0)

    def on_progress(result: ScoreResult, pages_done: int) -> None:
        seen.append(result)
        assert pages_done == sum(len(r.pages) for r in seen if r.status == "ok")  # the progress bar's count

    return run_generate(options, RunSettings(out=out, workers=workers, progress=False), on_progress=on_progress)


def test_the_last_score_is_drawn_to_its_share_and_counted_on_its_kept_pages(tmp_path):
    plan = plan_sources(GenerateOptions(sources=(str(BWV248), str(JOPLIN)), pages=1, seed=3))
    first_pages = {str(BWV248): 5, str(JOPLIN): 3}[plan[0]]
    pages = first_pages + 1  # all of the first score, one page of the second
    one: list[ScoreResult] = []
    summary = _run(tmp_path / "one", pages, 1, one)
    assert summary.pages == pages
    # One worker hands the second score out after the first is in: it is drawn to one page only.
    assert [len(r.pages) for r in one] == [first_pages, 1]
    # Two workers start both at once: the second is drawn further, and cut when the dataset is made.
    two: list[ScoreResult] = []
    _run(tmp_path / "two", pages, 2, two)
    assert {r.source: len(r.pages) for r in two}[plan[1]] > 1
    assert tree_digest(tmp_path / "one") == tree_digest(tmp_path / "two")

    # The dataset's unmapped glyphs and removed duplicates are those of its own pages, recounted here.
    manifest = [json.loads(line) for line in (tmp_path / "two" / "manifest.jsonl").read_text().splitlines()]
    assert [record["source"] for record in manifest] == plan
    unmapped: Counter = Counter()
    duplicates = 0
    for record, keep in zip(manifest, (first_pages, 1)):
        pages_made = score_pages(record["source"], EngraveOptions(font=record["font"]))[:keep]
        for page in pages_made:
            unmapped.update(page.unmapped)
            duplicates += page.duplicates_removed
        assert sum(Counter(p.unmapped).total() for p in pages_made) == Counter(record["unmapped"]).total()
    counts = json.loads((tmp_path / "two" / "dataset.json").read_text())["counts"]
    assert counts["unmapped_glyphs"] == dict(sorted(unmapped.items()))
    assert counts["duplicates_removed"] == duplicates


class _CountingResults(dict):
    """A results dict that counts look-ups: the acceptance's work, without timing anything."""

    lookups = 0

    def get(self, key, default=None):
        self.lookups += 1
        return super().get(key, default)


@pytest.mark.parametrize("pages", [None, 30_000])
def test_acceptance_looks_at_each_result_about_once(pages):
    # A run of 100,000 scores asks once per task and once per result; scanning the plan from its
    # start each time (as before) was 10 s of the driver's time for 10,000 scores, 50 s for 20,000.
    n = 5_000
    plan = [f"s{i}" for i in range(n)]
    results = _CountingResults()
    acceptance = Acceptance(plan, results, Caps(pages))
    for i, source in enumerate(plan):
        acceptance.pages_needed_at_most(source)
        if i >= 4:  # four tasks in flight, results in plan order
            done = plan[i - 4]
            results[done] = _ok(done, done, 3)
            assert not acceptance.final()
    for source in plan[-4:]:
        results[source] = _ok(source, source, 3)
    assert acceptance.final()
    assert acceptance.prefix() == (plan, True)
    assert results.lookups < 10 * n
