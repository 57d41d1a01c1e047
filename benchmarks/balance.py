"""Class coverage of a default sample against a balanced one (issue: every class, on demand).

    python benchmarks/balance.py [--pages 1000] [--minimum 100] [--classes deepscores] [--workers 2]
                                 [--keep DIR] [--plot docs/img/balance.png]

Generates, from the default corpus with one seed, three datasets of ``--pages`` pages each:

- ``uncapped``: the sample as before the diversity caps (``--max-pages-per-score 0`` and no share caps);
- ``default``: today's default sample (at most 10 pages a score, 20 % a collection, 30 % a font);
- ``balanced``: ``--min-per-class MINIMUM`` (composed scores fill the classes still short).

and prints, for each: pages, symbols, the classes present / at or above MINIMUM / absent, the most
common class and its count, the median class count (over the vocabulary, absent classes as 0), the
ratio of the two, the largest score's and collection's share of the pages, the composed share, and
the time taken. With ``--plot`` it draws the per-class counts of the three runs on one log axis.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from deepscores.classes import load_catalogue
from deepscores.gallery import not_producible
from deepscores.pipeline.quota import collection_of
from deepscores.pipeline.run import GenerateOptions, RunSettings, read_manifest, run_generate

RUNS = {
    "uncapped": dict(max_pages_per_score=0, max_collection_share=0, max_font_share=0),
    "default": {},
    "balanced": None,  # filled from --minimum
}


def measure(out: Path, classes: str, minimum: int) -> dict:
    data = json.loads((out / "dataset.json").read_text())
    counts = Counter(data["counts"]["per_class"])
    catalogue = load_catalogue(classes)
    producible = [n for n in catalogue.names if n not in not_producible(classes)]
    values = [counts.get(n, 0) for n in producible]
    top_name, top = counts.most_common(1)[0]
    median = statistics.median(values)
    by_score, by_collection = Counter(), Counter()
    for result in read_manifest(out).values():
        if result.status == "ok":
            by_score[result.source] += len(result.pages)
            by_collection[collection_of(result.source) or "composed"] += len(result.pages)
    pages = data["counts"]["pages"]
    return {
        "pages": pages, "symbols": data["counts"]["symbols"],
        "present": sum(v > 0 for v in values), f"≥{minimum}": sum(v >= minimum for v in values),
        "absent": sum(v == 0 for v in values), "min": min(values), "top": f"{top_name} {top}", "median": median,
        "top/median": round(top / median, 1) if median else float("inf"),
        "max score share": round(max(by_score.values()) / pages, 3),
        "max collection share": round(max(v for k, v in by_collection.items() if k != "composed") / pages, 3),
        "composed share": round(by_collection.get("composed", 0) / pages, 3),
        "counts": {n: counts.get(n, 0) for n in producible},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--minimum", type=int, default=100)
    parser.add_argument("--classes", default="deepscores")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="keep the datasets under this folder")
    parser.add_argument("--plot", type=Path, help="draw the per-class counts of the runs into this PNG")
    parser.add_argument("--runs", default="uncapped,default,balanced")
    parser.add_argument("--patches", type=int, default=0, help="patches per class (0: none), to train on the datasets")
    parser.add_argument("--formats", default="deepscores", help="comma list, e.g. deepscores,coco to train a detector")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="balance-"))
    rows = {}
    for name in args.runs.split(","):
        extra = RUNS[name] if RUNS[name] is not None else dict(min_per_class=args.minimum)
        options = GenerateOptions(pages=args.pages, seed=args.seed, classes=args.classes, patches_per_class=args.patches,
                                  formats=tuple(args.formats.split(",")), **extra)
        out = root / f"{args.classes}-{name}-{args.pages}"
        start = time.monotonic()
        summary = run_generate(options, RunSettings(out=out, workers=args.workers, progress=False, resume=out.exists()))
        row = measure(out, args.classes, args.minimum)
        row["seconds"] = round(time.monotonic() - start, 1)
        row["short of minimum"] = len(summary.deficits)
        rows[name] = row
        print(f"{name}: done in {row['seconds']} s", flush=True)
    keys = [k for k in next(iter(rows.values())) if k != "counts"]
    print(f"\n| {args.classes}, {args.pages} pages, seed {args.seed} | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))
    for key in keys:
        print(f"| {key} | " + " | ".join(str(rows[r][key]) for r in rows) + " |")
    if args.plot:
        plot(rows, args.plot, args.minimum, args.classes)
    (root / f"{args.classes}-balance.json").write_text(json.dumps(rows, indent=1))


def plot(rows: dict, path: Path, minimum: int, classes: str) -> None:
    from matplotlib.figure import Figure

    names = list(next(iter(rows.values()))["counts"])
    order = sorted(names, key=lambda n: -rows[list(rows)[0]]["counts"][n])
    figure = Figure(figsize=(16, 6), dpi=100)
    axes = figure.add_subplot()
    for offset, (label, row) in enumerate(rows.items()):
        axes.bar([i + 0.28 * (offset - 1) for i in range(len(order))], [max(row["counts"][n], 0.8) for n in order],
                 width=0.28, label=label, log=True)
    axes.axhline(minimum, color="black", linewidth=0.8, linestyle="--")
    axes.set_xticks(range(len(order)), order, rotation=90, fontsize=5)
    axes.set_ylabel("instances (log)")
    axes.set_title(f"{classes}: instances per class, classes ordered by the first run")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


if __name__ == "__main__":
    main()
