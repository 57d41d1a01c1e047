"""Balancing (``generate --min-per-class N``): after the plan's scores, rounds of composed scores
aimed at the classes still below N, until every producible class has N instances or the pages run out.

Each round counts the classes on the pages the dataset keeps so far (quota.py decides which), asks the
composer for the device rates that draw the missing classes (compose.rates_for_classes, weighted by
how far each class is from N) and runs a batch of composed scores with those rates. A round's
sources are named by (seed, round, index, rates), and its deficits depend only on earlier results,
so a resumed run makes the same rounds and finds them in the manifest.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

from deepscores.classes import Catalogue
from deepscores.gallery import not_producible
from deepscores.pipeline.finalize import final_results
from deepscores.pipeline.quota import Caps
from deepscores.pipeline.tasks import ScoreResult
from deepscores.synthetic import synthetic_sources

#: Pages a balancing score is taken to give before a round has made any (later rounds use the mean).
PAGES_PER_COMPOSED = 2.0
#: Composed scores a round holds at most. A constant, not the number of workers: the rounds (and so
#: the dataset) must not depend on how the run is executed.
ROUND_SCORES = 16
#: Rounds at most: each adds at least one page while deficits remain, so this only guards a composer
#: that cannot draw a class it claims.
MAX_ROUNDS = 200


def class_counts(accepted: list[str], results: dict[str, ScoreResult], caps: Caps) -> tuple[Counter, int]:
    """Instances per class, and pages, on the pages the dataset keeps of ``accepted``."""
    counts: Counter = Counter()
    pages = 0
    for result in final_results(accepted, results, caps):
        if result.status == "ok":
            pages += len(result.pages)
            for page in result.pages:
                counts.update(page.class_counts)
    return counts, pages


def deficits(counts: Counter, catalogue: Catalogue, minimum: int) -> dict[str, int]:
    """Producible classes below ``minimum`` → how many instances they lack."""
    skip = not_producible(catalogue.name)
    return {name: minimum - counts[name] for name in catalogue.names if name not in skip and counts[name] < minimum}


def balance(accepted: list[str], results: dict[str, ScoreResult], caps: Caps, catalogue: Catalogue, minimum: int,
            seed: int, run_batch: Callable[[list[str], int], list[str]]) -> tuple[list[str], dict[str, int]]:
    """Add balancing rounds to ``accepted``; return the sources in dataset order and the deficits
    left (empty when every producible class reached ``minimum``). ``run_batch(sources, room)`` makes
    the scores of one round, stopping once ``room`` pages are in, and returns those that count."""
    from deepscores.compose import rates_for_classes

    accepted = list(accepted)
    plan_pages, composed = None, 0  # to size a round: pages the rounds gave so far, per score
    for round_number in range(1, MAX_ROUNDS + 1):
        counts, pages = class_counts(accepted, results, caps)
        plan_pages = pages if plan_pages is None else plan_pages
        missing = deficits(counts, catalogue, minimum)
        room = (caps.pages or 0) - pages
        if not missing or room <= 0:
            return accepted, missing
        rates = rates_for_classes({name: lack / minimum for name, lack in sorted(missing.items())})
        # Kept pages, not made ones: how far a worker drew a score depends on timing, what the
        # dataset keeps of it does not, so the rounds are the same on any engine and on resume.
        per_score = (pages - plan_pages) / composed if composed and pages > plan_pages else PAGES_PER_COMPOSED
        size = max(1, min(math.ceil(room / per_score), ROUND_SCORES))
        batch = run_batch(synthetic_sources(seed, round_number, size, rates), room)
        composed += sum(results[s].status == "ok" for s in batch)
        accepted += batch
    counts, _ = class_counts(accepted, results, caps)
    return accepted, deficits(counts, catalogue, minimum)
