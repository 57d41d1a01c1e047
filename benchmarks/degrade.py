"""Degradation (issue #9): what it costs and what it buys. Prints two tables (not a test).

1. Speed: the generator's per-page time with --degrade none / light / scan / photo (one worker,
   the same pages), and the degradation's own share measured in-process on the same pages.
2. Domain gap: the classification baseline (`small` preset) trained on clean pages and on degraded
   pages under the same time budget, each evaluated on a clean and a degraded test split (scores
   never seen in training: splits are by score, and the degraded dataset keeps the clean one's splits):
   a 2×2 table of macro accuracy, and the same for the FCN detector's mAP@.5.

Run: python benchmarks/degrade.py [--pages 40] [--minutes 10] [--preset scan] [--speed-only] [--gap-only]
     [--side-by-side] [--work DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import music21

from deepscores.annotate import score_pages
from deepscores.degrade.apply import degrade_page, page_seed
from deepscores.degrade.dataset import degrade_dataset
from deepscores.degrade.presets import load_preset
from deepscores.engrave import EngraveOptions
from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate

PRESETS = ("none", "light", "scan", "photo")


def speed_table(work: Path, pages: int) -> None:
    print(f"## generate, per-page time ({pages} pages of music21:bach, 1 worker, patches off)\n")
    print("| --degrade | s/page | vs none | degrade alone, ms/page (median) |")
    print("|---|---:|---:|---:|")
    # In-process: the degradation's own cost on real pages (engraved once).
    sources = [music21.corpus.getWork(w) for w in ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1")]
    clean = [p for s in sources for p in score_pages(s, EngraveOptions(font="Leipzig"))]
    base = None
    for preset_name in PRESETS:
        out = work / f"speed-{preset_name}"
        shutil.rmtree(out, ignore_errors=True)
        options = GenerateOptions(corpus="music21:bach", pages=pages, seed=0, patches_per_class=0, degrade=preset_name,
                                  formats=("deepscores",))
        start = time.perf_counter()
        summary = run_generate(options, RunSettings(out=out, workers=1, progress=False))
        per_page = (time.perf_counter() - start) / summary.pages
        base = base or per_page
        alone = "-"
        if preset_name != "none":
            preset = load_preset(preset_name)
            times = []
            for seed in range(3):
                for page in clean:
                    t = time.perf_counter()
                    degrade_page(page, preset, page_seed(seed, page.score_id, page.page_number))
                    times.append(time.perf_counter() - t)
            alone = f"{1000 * statistics.median(times):.0f}"
        print(f"| {preset_name} | {per_page:.3f} | {100 * (per_page / base - 1):+.0f} % | {alone} |")
    print()


def train_one(kind: str, data: Path, run: Path, minutes: float, epochs: int) -> None:
    """One model of the gap table, from scratch, under the time budget."""
    shutil.rmtree(run, ignore_errors=True)
    if kind == "classify":
        from deepscores.ml.train_classify import train_classify

        train_classify(data, run, preset="small", epochs=epochs, device="cpu", max_minutes=minutes, progress=False)
    else:
        from deepscores.ml.train_detect import train_detect

        train_detect(data, run, detector="fcn", preset="cpu", device="cpu", max_minutes=minutes, val_pages=2,
                     progress=False)


def train_pair(kind: str, jobs: list[tuple[Path, Path]], minutes: float, epochs: int, side_by_side: bool) -> list[float]:
    """Train the clean and the degraded model; returns each one's wall time. Side by side: two processes
    with one torch thread each, started together, so a busy machine slows both alike."""
    if not side_by_side:
        walls = []
        for data, run in jobs:
            start = time.perf_counter()
            train_one(kind, data, run, minutes, epochs)
            walls.append(time.perf_counter() - start)
        return walls
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--train-one", kind, str(data), str(run), str(minutes),
                               str(epochs), "--threads", "1"]) for data, run in jobs]
    walls = []
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"training {kind} failed (exit {proc.returncode})")
        walls.append(time.perf_counter() - start)
    return walls


def _table_head(title: str, preset: str) -> None:
    print(f"## {title}\n")
    print(f"| trained on \\ tested on | clean | {preset} | training s |")
    print("|---|---:|---:|---:|")


def domain_gap(work: Path, pages: int, minutes: float, preset: str, epochs: int, test_pages: int,
               side_by_side: bool = False) -> None:
    from deepscores.ml.evaluate_classify import evaluate_classify

    clean, degraded = work / "clean", work / f"degraded-{preset}"
    if not (clean / "dataset.json").is_file():
        shutil.rmtree(clean, ignore_errors=True)
        run_generate(GenerateOptions(pages=pages, seed=0, patches_per_class=300, split=(0.7, 0.1, 0.2)),
                     RunSettings(out=clean, workers=2, progress=False))
    if not (degraded / "dataset.json").is_file():
        shutil.rmtree(degraded, ignore_errors=True)
        degrade_dataset(clean, degraded, preset, workers=2)
    how = "side by side, one core each" if side_by_side else "one after the other, all cores"
    names = ("clean", preset)
    runs = [work / f"run-{name}" for name in names]
    walls = train_pair("classify", list(zip((clean, degraded), runs)), minutes, epochs, side_by_side)
    _table_head(f"classification, macro accuracy on the test split ({pages} pages; small preset, "
                f"≤ {minutes:g} min / ≤ {epochs} epochs each on CPU, {how})", preset)
    for name, run, wall in zip(names, runs, walls):
        on_clean, on_degraded = (evaluate_classify(run, test, "test", out=run / f"eval-{test_name}",
                                                   device="cpu")["macro_accuracy"]
                                 for test_name, test in zip(names, (clean, degraded)))
        print(f"| {name} | {on_clean:.4f} | {on_degraded:.4f} | {wall:.0f} |", flush=True)
    print()
    # Detection: the FCN detector (CPU preset) under the same budget, mAP@.5 over all classes and the
    # test split's ten most frequent ones.
    from deepscores.ml.predict_detect import evaluate_detect_run

    runs = [work / f"detect-{name}" for name in names]
    walls = train_pair("detect", list(zip((clean, degraded), runs)), minutes, epochs, side_by_side)
    _table_head(f"detection, FCN detector mAP@.5 on the test split (all classes / top-10 classes; "
                f"≤ {minutes:g} min each on CPU, ≤ {test_pages} test pages, {how})", preset)
    for name, run, wall in zip(names, runs, walls):
        on_clean, on_degraded = (evaluate_detect_run(run, test, "test", out=run / f"eval-{test_name}" / "metrics.json",
                                                     device="cpu", max_pages=test_pages, overlays=0, progress=False)
                                 for test_name, test in zip(names, (clean, degraded)))
        print(f"| {name} | {on_clean['mAP50']:.4f} / {on_clean['mAP50_top10']:.4f} "
              f"| {on_degraded['mAP50']:.4f} / {on_degraded['mAP50_top10']:.4f} | {wall:.0f} |", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40, help="pages of the domain-gap datasets")
    parser.add_argument("--speed-pages", type=int, default=12)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per model")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--test-pages", type=int, default=10, help="test pages scored by the detectors")
    parser.add_argument("--preset", default="scan")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--gap-only", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="keep datasets and runs here (default: a temp folder)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="train each pair (clean, degraded) at once, one core each: load on the machine hits both alike")
    parser.add_argument("--train-one", nargs=5, metavar=("KIND", "DATA", "RUN", "MINUTES", "EPOCHS"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.train_one:
        kind, data, run, minutes, epochs = args.train_one
        train_one(kind, Path(data), Path(run), float(minutes), int(epochs))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="degrade-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if not args.gap_only:
        speed_table(work, args.speed_pages)
    if not args.speed_only:
        domain_gap(work, args.pages, args.minutes, args.preset, args.epochs, args.test_pages, args.side_by_side)


if __name__ == "__main__":
    main()
