"""The diversity caps of a sample (pipeline/quota.py): pages per score, share per collection and per
font, the plan's part of the pages when balancing; and that run and finishing count alike."""

from __future__ import annotations

import pytest

from deepscores.errors import OptionsError
from deepscores.pipeline.quota import Acceptance, Caps, PageQuota, collection_of, least_kept, take_pages
from deepscores.pipeline.run import GenerateOptions, plan_sources
from deepscores.pipeline.tasks import PageSummary, ScoreResult
from deepscores.synthetic import balancing_batch, synthetic_sources


def _ok(source: str, pages: int, font: str = "Leipzig") -> ScoreResult:
    return ScoreResult(source, "ok", source[-8:], font=font,
                       pages=[PageSummary(f"{source}-{i}", i, 1, {}) for i in range(pages)])


def test_collection_of_names_the_corpus_folder_or_the_parent_folder():
    plan = plan_sources(GenerateOptions(corpus="music21:palestrina", pages=5))
    assert {collection_of(s) for s in plan} == {"music21:palestrina"}
    assert collection_of("/home/me/scores/a.mei") == "/home/me/scores"
    assert collection_of("synthetic:0-0-00001") is None


def test_each_cap_cuts_exactly_its_share():
    quota = PageQuota(Caps(pages=20, per_score=6, collection_share=0.5, font_share=0.6))
    # per score: 6 of 9
    assert quota.take("/c/one.xml", 9, "Leipzig") == 6
    # the collection /c may have 10 of 20: 4 are left
    assert quota.take("/c/two.xml", 5, "Bravura") == 4
    assert quota.take("/c/three.xml", 5, "Bravura") == 0
    # Leipzig may have 12: 6 are left, and the per-score cap is 6
    assert quota.take("/d/four.xml", 8, "Leipzig") == 6
    # 16 taken: 4 left of N
    assert quota.take("/e/five.xml", 8, "Bravura") == 4
    assert (quota.total, quota.by_collection["/c"], quota.by_font["Leipzig"]) == (20, 10, 12)
    # a share never keeps less than one score's worth: a 3-page sample in one font is not starved
    small = PageQuota(Caps(pages=3, per_score=10, font_share=0.3))
    assert [small.take(f"/s/{i}.xml", 1, "Leland") for i in range(3)] == [1, 1, 1]
    # without a per-score cap the share is rounded up: 0.3 × 3 → 1 page
    bare = PageQuota(Caps(pages=3, font_share=0.3))
    assert [bare.take(f"/s/{i}.xml", 1, "Leland") for i in range(3)] == [1, 0, 0]
    # every font of a score: the per-score cap is per font, and no font cap applies
    every = PageQuota(Caps(pages=100, per_score=3, font_share=0.1))
    assert every.take("/x/a.xml", 20, "Leipzig,Bravura", font_count=2) == 6


def test_composed_scores_are_not_capped_per_collection_and_balancing_fills_the_rest():
    quota = PageQuota(Caps(pages=10, collection_share=0.1, plan_pages=6))
    plan_scores = synthetic_sources(1, 0, 3)
    rounds = synthetic_sources(1, 1, 3, (("dynamics", 4.0),))
    assert [balancing_batch(s) for s in plan_scores + rounds] == [0, 0, 0, 1, 1, 1]
    assert [quota.take(s, 4, "Leland") for s in plan_scores] == [4, 2, 0]  # the plan stops at 6
    assert [quota.take(s, 3, "Leland") for s in rounds] == [3, 1, 0]       # the rounds fill to 10
    assert (quota.total, quota.plan_total) == (10, 6)


def test_share_caps_never_go_below_an_equal_share():
    options = GenerateOptions(pages=100, max_collection_share=0.2, max_font_share=0.3, fonts=("Leipzig", "Bravura"))
    caps = options.caps(["/a/x.xml", "/b/y.xml"])
    assert (caps.collection_share, caps.font_share, caps.per_score) == (0.5, 0.5, 10)
    assert GenerateOptions().caps(["/a/x.xml"]) == Caps()  # no sample, no caps
    assert GenerateOptions(pages=10, min_per_class=5, balance_share=0.4).caps().plan_pages == 6


def test_acceptance_bounds_hold_under_caps():
    plan = ["/c/a.xml", "/c/b.xml", "/d/c.xml"]
    results = {"/c/b.xml": _ok("/c/b.xml", 5)}
    caps = Caps(pages=10, per_score=4, collection_share=0.5)
    acceptance = Acceptance(plan, results, caps)
    # b's pages may all be cut (its collection may fill first), so they are not counted; the bound is
    # the per-score cap.
    assert least_kept(caps, results["/c/b.xml"]) == 0
    assert acceptance.pages_needed_at_most("/d/c.xml") == 4
    results["/c/a.xml"] = _ok("/c/a.xml", 4)
    assert acceptance.final() is False and acceptance.pages_needed_at_most("/d/c.xml") == 4
    quota = PageQuota(caps)
    assert [take_pages(quota, results[s]) for s in plan[:2]] == [4, 1]


@pytest.mark.parametrize("bad", [dict(max_pages_per_score=-1), dict(max_collection_share=1.5), dict(synthetic=-2),
                                 dict(min_per_class=3), dict(corpus="synthetic"), dict(balance_share=-0.1)])
def test_bad_caps_and_balance_options_are_one_line_errors(bad):
    with pytest.raises(OptionsError) as info:
        GenerateOptions(**bad).validate()
    assert "\n" not in str(info.value)
