"""The honest check of balancing: train the same models on a default and on a balanced dataset of equal
size, and test both on held-out real-corpus pages and on held-out composed pages.

    python benchmarks/balance.py --pages 1000 --patches 400 --formats deepscores,coco --keep WORK
    python benchmarks/balance_training.py --work WORK [--classify-minutes 15] [--detect-minutes 20]
                                          [--detect-test-pages 30]

WORK holds ``deepscores-default-1000`` and ``deepscores-balanced-1000`` (from balance.py). This script
makes two held-out test sets there:

- ``heldout-real``: 150 pages of music21 corpus scores that neither training dataset holds (a seeded
  sample of the rest of the corpus, every page in the test split);
- ``heldout-composed``: 100 pages of composed scores of another seed, balanced to 20 instances a class
  (music neither training dataset has seen);

then trains the ``small`` classifier and the FCN detector (cpu preset) on each training dataset, the two
trainings of a kind side by side with one thread each, and prints per-class tables: classification
accuracy and detection AP@.5 per class, for both models on both test sets, with the number of training
instances of the class in each dataset. Every figure is also in WORK/balance-training.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from collections import Counter
from pathlib import Path

from deepscores.corpus import default_corpus
from deepscores.pipeline.run import GenerateOptions, RunSettings, read_manifest, run_generate

TRAIN = ("default", "balanced")
TESTS = ("heldout-real", "heldout-composed")


def make_test_sets(work: Path, pages: int) -> None:
    used = set()
    for name in TRAIN:
        used |= set(read_manifest(work / f"deepscores-{name}-{pages}"))
    rest = tuple(str(p) for p in default_corpus() if str(p) not in used)
    sets = {
        "heldout-real": GenerateOptions(sources=rest, pages=150, seed=5, split=(0.0, 0.0, 1.0), patches_per_class=200,
                                        formats=("deepscores", "coco")),
        "heldout-composed": GenerateOptions(corpus="synthetic", pages=100, seed=999, min_per_class=20, balance_share=1.0,
                                            split=(0.0, 0.0, 1.0), patches_per_class=200, formats=("deepscores", "coco")),
    }
    for name, options in sets.items():
        out = work / name
        if not (out / "dataset.json").is_file():
            run_generate(options, RunSettings(out=out, workers=2, progress=False, resume=out.exists()))


def _train(kind: str, data: str, run: str, minutes: float) -> None:
    import torch

    torch.set_num_threads(1)
    if kind == "classify":
        from deepscores.ml.train_classify import train_classify

        train_classify(data, run, preset="small", device="cpu", max_minutes=minutes, progress=False, epochs=100)
    else:
        from deepscores.ml.train_detect import train_detect

        train_detect(data, run, detector="fcn", preset="cpu", device="cpu", max_minutes=minutes, progress=False,
                     epochs=1000)


def train_pair(kind: str, work: Path, pages: int, minutes: float) -> None:
    jobs = []
    for name in TRAIN:
        run = work / f"run-{kind}-{name}"
        if (run / "history.json").is_file():
            continue
        job = multiprocessing.get_context("spawn").Process(
            target=_train, args=(kind, str(work / f"deepscores-{name}-{pages}"), str(run), minutes))
        job.start()
        jobs.append(job)
    for job in jobs:
        job.join()


def train_counts(work: Path, pages: int) -> dict[str, Counter]:
    counts = {}
    for name in TRAIN:
        data = json.loads((work / f"deepscores-{name}-{pages}" / "dataset.json").read_text())
        counts[name] = Counter(data["counts"]["per_class"])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--classify-minutes", type=float, default=15)
    parser.add_argument("--detect-minutes", type=float, default=20)
    parser.add_argument("--detect-test-pages", type=int, default=30)
    parser.add_argument("--skip-detect", action="store_true")
    args = parser.parse_args()
    work = args.work
    make_test_sets(work, args.pages)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from deepscores.ml.evaluate_classify import evaluate_classify
    from deepscores.ml.predict_detect import evaluate_detect_run

    results: dict = {"classify": {}, "detect": {}}
    train_pair("classify", work, args.pages, args.classify_minutes)
    for name in TRAIN:
        for test in TESTS:
            results["classify"][f"{name}/{test}"] = evaluate_classify(
                work / f"run-classify-{name}", work / test, split="test", device="cpu",
                out=work / f"run-classify-{name}" / f"eval-{test}" / "metrics.json")
    if not args.skip_detect:
        train_pair("detect", work, args.pages, args.detect_minutes)
        for name in TRAIN:
            for test in TESTS:
                results["detect"][f"{name}/{test}"] = evaluate_detect_run(
                    work / f"run-detect-{name}", work / test, split="test", device="cpu",
                    max_pages=args.detect_test_pages, overlays=0, progress=False,
                    out=work / f"run-detect-{name}" / f"eval-{test}" / "metrics.json")
    (work / "balance-training.json").write_text(json.dumps(results, indent=1, default=str))
    report(results, train_counts(work, args.pages))


def _per_class(metrics: dict, key: str) -> dict[str, float]:
    table = metrics.get("per_class", {})
    return {name: row.get(key) for name, row in table.items() if isinstance(row, dict)}


def report(results: dict, counts: dict[str, Counter]) -> None:
    for kind, key, label in (("classify", "accuracy", "accuracy"), ("detect", "AP50", "AP@.5")):
        if not results[kind]:
            continue
        print(f"\n## {kind}: summary")
        print("| trained on | tested on | " + " | ".join(k for k in next(iter(results[kind].values()))
                                                   if isinstance(next(iter(results[kind].values()))[k], (int, float))) + " |")
        for run, metrics in results[kind].items():
            numbers = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in metrics.values() if isinstance(v, (int, float))]
            print(f"| {run.replace('/', ' | ')} | " + " | ".join(numbers) + " |")
        print(f"\n## {kind}: per class {label} (train instances default / balanced)")
        columns = list(results[kind])
        tables = {c: _per_class(results[kind][c], key) for c in columns}
        names = sorted(set().union(*tables.values()), key=lambda n: counts["default"][n])
        print("| class | train default | train balanced | " + " | ".join(columns) + " |")
        print("|---|---|---|" + "---|" * len(columns))
        for name in names:
            cells = [tables[c].get(name) for c in columns]
            print(f"| {name} | {counts['default'][name]} | {counts['balanced'][name]} | "
                  + " | ".join("–" if v is None else f"{v:.3f}" for v in cells) + " |")


if __name__ == "__main__":
    main()
