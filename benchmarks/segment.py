"""Segmentation baseline: train a preset on an existing dataset under a time budget, evaluate on the test
split, and print a table (not a test).
Run: python benchmarks/segment.py DATASET [--preset cpu] [--minutes 45] [--run runs/seg-bench] [--pages N]."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from deepscores.evaluation.segment import evaluate_segment
from deepscores.ml.train_segment import train_segment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--run", type=Path, default=Path("runs/seg-bench"))
    parser.add_argument("--pages", type=int, default=None, help="test pages to evaluate (default: all)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    shutil.rmtree(args.run, ignore_errors=True)  # a fresh run: the benchmark measures training from scratch
    start = time.perf_counter()
    train_segment(args.data, args.run, preset=args.preset, device=args.device, max_minutes=args.minutes,
                  progress=False)
    wall = time.perf_counter() - start
    history = json.loads((args.run / "history.json").read_text())
    metrics = evaluate_segment(args.run, args.data, "test", device=args.device, max_pages=args.pages)
    rows = [
        ("preset", args.preset),
        ("training", f"{len(history)} epochs, {sum(r['crops'] for r in history)} crops in {wall / 60:.1f} min"),
        ("crops/s (median epoch)", f"{sorted(r['crops_per_s'] for r in history)[len(history) // 2]}"),
        ("val mIoU by epoch", " ".join(f"{r['val_mIoU']:.3f}" for r in history)),
        ("test pages", metrics["pages"]),
        ("test mIoU / mIoU_top10", f"{metrics['mIoU']:.4f} / {metrics['mIoU_top10']:.4f}"),
        ("test pixel / foreground accuracy",
         f"{metrics['pixel_accuracy']:.4f} / {metrics['foreground_pixel_accuracy']:.4f}"),
        ("inference pages/s", metrics["pages_per_s"]),
    ]
    print("| what | result |\n|---|---|")
    for what, result in rows:
        print(f"| {what} | {result} |")


if __name__ == "__main__":
    main()
