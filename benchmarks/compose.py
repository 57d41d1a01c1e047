"""What composing costs next to what its scores cost to turn into pages.

    python benchmarks/compose.py [--scores 6] [--measures 32] [--repeat 3]

For each layout (default rates, and every device at its frequent rate): the median milliseconds to
compose one score, the pages Verovio lays it out on, the milliseconds per page to engrave and
annotate (deepscores.engrave.engrave + deepscores.annotate.annotate, DeepScores geometry, Leipzig),
and composing's share: compose time / (pages x page time). Target: composing adds <= 10 % to the
pages it yields. One process, one core; all ratios come from the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from pathlib import Path

from deepscores.annotate import annotate
from deepscores.classes import load_catalogue
from deepscores.compose import LAYOUTS, ComposeOptions, compose_mei
from deepscores.compose.devices import FREQUENT_RATES
from deepscores.corpus import Score
from deepscores.engrave import EngraveOptions, engrave
from deepscores.raster import get_backend


def measure(layout: str, rates: tuple, seeds: range, measures: int, repeat: int, catalogue, backend) -> dict[str, float]:
    options = ComposeOptions(layout=layout, measures=measures, rates=rates)
    engrave_options = EngraveOptions(font="Leipzig")
    compose_ms, page_ms, pages = [], [], 0
    for seed in seeds:
        runs = []
        for _ in range(repeat):
            t = time.perf_counter()
            text = compose_mei(seed, options)
            runs.append((time.perf_counter() - t) * 1000)
        compose_ms.append(statistics.median(runs))
        score = Score(Path(f"synthetic-{seed}.mei"), text, "mei", hashlib.sha256(text.encode()).hexdigest())
        t = time.perf_counter()
        engraved = engrave(score, engrave_options)
        for page in engraved:
            annotate(page, score.score_id, catalogue, backend)
        page_ms.append((time.perf_counter() - t) * 1000 / len(engraved))
        pages += len(engraved)
    per_score = statistics.mean(compose_ms)
    per_page = statistics.mean(page_ms)
    pages_per_score = pages / len(seeds)
    return {"compose_ms": per_score, "pages": pages_per_score, "page_ms": per_page,
            "share": per_score / (pages_per_score * per_page)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", type=int, default=6, help="seeds per layout")
    ap.add_argument("--measures", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3, help="compositions per seed (median)")
    args = ap.parse_args()
    catalogue, backend = load_catalogue(), get_backend()
    # Warm Verovio's toolkit, the font outlines and the composer's imports before timing anything.
    warm = compose_mei(0, ComposeOptions(layout="piano", measures=4))
    engrave(Score(Path("warm.mei"), warm, "mei", "0" * 64), EngraveOptions(font="Leipzig"))
    seeds = range(args.scores)
    print(f"{args.scores} scores per row, {args.measures} measures each; ms are per score (compose) and per page")
    print(f"{'layout':<11}{'rates':<10}{'compose ms':>11}{'pages':>7}{'page ms':>9}{'share':>8}")
    totals = []
    for rates_name, rates in (("default", ()), ("frequent", tuple(FREQUENT_RATES.items()))):
        for layout in LAYOUTS:
            row = measure(layout, rates, seeds, args.measures, args.repeat, catalogue, backend)
            totals.append(row)
            print(f"{layout:<11}{rates_name:<10}{row['compose_ms']:>11.1f}{row['pages']:>7.2f}"
                  f"{row['page_ms']:>9.1f}{row['share']:>8.1%}")
    compose_all = sum(r["compose_ms"] for r in totals)
    pages_all = sum(r["pages"] * r["page_ms"] for r in totals)
    print(f"{'all':<21}{compose_all / len(totals):>11.1f}{'':>7}{'':>9}{compose_all / pages_all:>8.1%}")


if __name__ == "__main__":
    main()
