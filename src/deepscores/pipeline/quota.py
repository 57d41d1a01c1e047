"""How many pages of each score a sample (``--pages N``) keeps: the diversity caps, and the
acceptance that decides, while a run goes on, which scores it still needs.

A sample is filled in plan order. No score gives more than ``per_score`` pages (per font), no
collection (a music21 corpus folder such as ``palestrina``, or the folder a user's file lies in)
more than ``collection_share`` of N, and no font more than ``font_share`` of N; the last score taken
is cut to what is left of N. A share is rounded up and never less than the per-score cap, so a small
sample is not starved by its shares. Composed scores (``synthetic:`` sources) are their own collection each:
they are made to be diverse. The run (which scores it still needs) and finishing (which pages the
dataset keeps) both count through this one class, so they cannot disagree.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from deepscores.corpus import corpus_relative_name
from deepscores.synthetic import SYNTHETIC_PREFIX, balancing_batch

if TYPE_CHECKING:
    from deepscores.pipeline.tasks import ScoreResult


@dataclass(frozen=True)
class Caps:
    """The caps of a sample; each None is off. Made from the run's options (`GenerateOptions.caps`),
    which dataset.json saves."""

    pages: int | None = None
    per_score: int | None = None
    collection_share: float | None = None
    font_share: float | None = None
    #: With balancing (pipeline/balance.py): the pages the plan's own scores may fill; the rest of
    #: ``pages`` is left to the balancing rounds' composed scores.
    plan_pages: int | None = None


# Cached: a run asks for every source of its plan when it sets the caps, and again each time a
# quota is counted afresh (finishing, every balancing round).
@functools.lru_cache(maxsize=1 << 16)
def collection_of(source: str) -> str | None:
    """'palestrina' for music21:palestrina/…, the parent folder's path for other files, None for a
    composed score."""
    if source.startswith(SYNTHETIC_PREFIX):
        return None
    name = corpus_relative_name(Path(source))
    if name.startswith("music21:"):
        return "music21:" + name[len("music21:"):].split("/", 1)[0]
    return str(PurePath(source).parent)


class PageQuota:
    """Counts, in plan order, the pages each accepted score gives a sample (see the module's doc)."""

    def __init__(self, caps: Caps) -> None:
        self.caps = caps
        self.total = 0
        self.plan_total = 0  # of which from the plan's own scores (not balancing rounds)
        self.by_collection: Counter = Counter()
        self.by_font: Counter = Counter()

    def _room(self, share: float | None, used: int) -> float:
        # A share is rounded up and never below one score's worth (the per-score cap): a small
        # sample is not starved by its shares.
        if share is None or self.caps.pages is None:
            return math.inf
        return max(math.ceil(share * self.caps.pages - 1e-9), self.caps.per_score or 0) - used

    def take(self, source: str, pages: int, fonts: str, font_count: int = 1) -> int:
        """How many of a score's ``pages`` (first ones first) the sample keeps; counted as taken."""
        caps = self.caps
        keep = float(pages)
        if caps.per_score is not None:
            keep = min(keep, caps.per_score * font_count)
        if caps.pages is not None:
            keep = min(keep, caps.pages - self.total)
        from_plan = balancing_batch(source) == 0
        if from_plan and caps.plan_pages is not None:
            keep = min(keep, caps.plan_pages - self.plan_total)
        collection = collection_of(source)
        if collection is not None:
            keep = min(keep, self._room(caps.collection_share, self.by_collection[collection]))
        if font_count == 1:
            keep = min(keep, self._room(caps.font_share, self.by_font[fonts]))
        kept = max(0, int(keep))
        self.total += kept
        self.plan_total += kept if from_plan else 0
        if collection is not None:
            self.by_collection[collection] += kept
        self.by_font[fonts] += kept
        return kept


def take_pages(quota: PageQuota, result) -> int:
    """`PageQuota.take` for a score's result (a pipeline.tasks.ScoreResult)."""
    fonts = result.font or ""
    return quota.take(result.source, len(result.pages), fonts, max(1, len(fonts.split(","))))


def least_kept(caps: Caps, result) -> int:
    """Pages a score's result gives a sample whatever comes before it (a lower bound): the collection
    and font caps can leave it none, the per-score cap leaves it at most that many."""
    if caps.collection_share is not None or caps.font_share is not None:
        return 0
    fonts = max(1, len((result.font or "").split(",")))
    return len(result.pages) if caps.per_score is None else min(len(result.pages), caps.per_score * fonts)


class Acceptance:
    """Decides, in plan order, which finished scores make the dataset (for ``--pages N``).

    Results come in while the run goes on; the run of plan entries from the start whose results are
    all in is kept as it grows (its length, pages and contents), so each question costs the few
    entries past it, not the whole plan: a run of 100,000 scores asks once per result and per task.
    """

    def __init__(self, plan: list[str], results: dict[str, ScoreResult], caps: Caps) -> None:
        # With balancing, the plan's scores fill only their part of the pages (quota.Caps.plan_pages).
        self.plan, self.results, self.caps = plan, results, caps
        self.pages = caps.plan_pages if caps.plan_pages is not None else caps.pages
        self.position = {source: index for index, source in enumerate(plan)}
        self._end = 0                 # plan[:_end] all have results ...
        self._quota = PageQuota(caps)  # ... holding this many dataset pages (first copy of each content)
        self._ids: set[str] = set()

    @property
    def _total(self) -> int:
        return self._quota.total

    def _full(self) -> bool:
        return self.pages is not None and self._total >= self.pages

    def _advance(self) -> None:
        while self._end < len(self.plan) and not self._full():
            source = self.plan[self._end]
            result = self.results.get(source)
            if result is None:
                return
            if result.status == "ok" and result.score_id not in self._ids:
                self._ids.add(result.score_id)
                take_pages(self._quota, result)
            self._end += 1

    def final(self) -> bool:
        """Whether the dataset's set of scores is decided (no later result can change it)."""
        self._advance()
        return self._end == len(self.plan) or self._full()

    def prefix(self) -> tuple[list[str], bool]:
        """Sources in the dataset so far, and whether that set is final."""
        final = self.final()
        return self.plan[: self._end], final

    def pages_needed_at_most(self, source: str) -> int | None:
        """A bound on the pages ``source`` can give the dataset (None: all of them): N less the pages
        the earlier scores surely give it (the prefix's exactly, the ones past it at least
        `quota.least_kept`), and the per-score cap. The scores still out give zero or more, so the
        bound holds whatever they bring; the dataset's scores are cut to their share of N in any
        case (finalize), so the dataset is the same whoever finishes first."""
        per_score = self.caps.per_score
        if self.pages is None:
            return per_score
        self._advance()
        position = self.position[source]
        if position < self._end:  # a source whose result is in already: count its predecessors afresh
            quota, ids = PageQuota(self.caps), set()
            for earlier in self.plan[:position]:
                result = self.results[earlier]
                if result.status == "ok" and result.score_id not in ids:
                    ids.add(result.score_id)
                    take_pages(quota, result)
            known = quota.total
        elif self._full():
            return 0  # the scores before it hold the N pages
        else:
            known, counted = self._total, set(self._ids)
            for earlier in self.plan[self._end:position]:
                result = self.results.get(earlier)
                if result is not None and result.status == "ok" and result.score_id not in counted:
                    counted.add(result.score_id)
                    known += least_kept(self.caps, result)
        bound = max(0, self.pages - known)
        return bound if per_score is None else min(bound, per_score)
