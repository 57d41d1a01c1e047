"""Detection and segmentation baselines on CPU: generate a fixed dataset from the default corpus, train
the FCN detector, Faster R-CNN and the segmentation U-Net under one time budget each, score them on the
test split and print one table.

    python benchmarks/detect.py                       # the issue's protocol: 45 min per model
    python benchmarks/detect.py --minutes 10 --test-pages 10   # a quicker look
    # two models side by side, one core each, then the table:
    python benchmarks/detect.py --models fcn --threads 1 & python benchmarks/detect.py --models faster-rcnn --threads 1
    python benchmarks/detect.py --report-only

Every figure comes from the run folders it writes (history.json, eval-test/metrics.json), so a table
can be rebuilt without training again (--report-only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("fcn", "faster-rcnn", "segment")


def generate(out: Path, pages: int, seed: int) -> str:
    if (out / "dataset.json").is_file():
        return "cached"
    start = time.perf_counter()
    subprocess.run(["deepscores", "generate", "--pages", str(pages), "--seed", str(seed), "--out", str(out),
                    "--patches-per-class", "0"], check=True)
    return f"{time.perf_counter() - start:.0f} s"


def train(model: str, data: Path, run: Path, minutes: float, preset: str, device: str) -> None:
    if (run / "eval-test" / "metrics.json").is_file():
        return
    if model == "segment":
        from deepscores.ml.train_segment import train_segment

        train_segment(data, run, preset=preset, device=device, max_minutes=minutes, resume=run.exists())
    else:
        from deepscores.ml.train_detect import train_detect

        train_detect(data, run, detector=model, preset=preset, device=device, max_minutes=minutes,
                     resume=run.exists())


def evaluate(model: str, data: Path, run: Path, test_pages: int | None, device: str) -> dict:
    out = run / "eval-test" / "metrics.json"
    if out.is_file():
        return json.loads(out.read_text())
    if model == "segment":
        from deepscores.evaluation.segment import evaluate_segment

        return evaluate_segment(run, data, "test", out=out, device=device, max_pages=test_pages)
    from deepscores.ml.predict_detect import evaluate_detect_run

    return evaluate_detect_run(run, data, "test", out=out, device=device, max_pages=test_pages)


def training_figures(run: Path) -> tuple[float, float, int]:
    """(training minutes, training crops per second, epochs) from a run's history."""
    history = json.loads((run / "history.json").read_text())
    seconds = sum(row["seconds"] for row in history)
    crops = sum(row.get("crops", row.get("samples", 0)) for row in history)
    return seconds / 60, crops / seconds if seconds else 0.0, len(history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/deepscores-detect-bench"))
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=45.0, help="training budget per model")
    parser.add_argument("--test-pages", type=int, default=None, help="score only the first N test pages")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/deepscores-detect-runs"))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (e.g. 1 to train two models side by side, one core each)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    gen = "skipped" if args.report_only else generate(args.data, args.pages, args.seed)
    rows = []
    for model in args.models.split(","):
        run = args.runs / f"{model}-{args.preset}"
        if not args.report_only:
            train(model, args.data, run, args.minutes, args.preset, args.device)
        metrics = evaluate(model, args.data, run, args.test_pages, args.device)
        minutes, rate, epochs = training_figures(run)
        speed = metrics.get("inference", {}).get("pages_per_s") or metrics.get("pages_per_s")
        if model == "segment":
            rows.append((model, f"{minutes:.1f}", f"{rate:.2f}", str(epochs), str(metrics.get("pages")),
                         f"mIoU top-10 {metrics['mIoU_top10']:.4f}", f"mIoU {metrics['mIoU']:.4f}",
                         f"pixel acc {metrics['pixel_accuracy']:.4f}", f"{speed:.3f}" if speed else "–"))
        else:
            rows.append((model, f"{minutes:.1f}", f"{rate:.2f}", str(epochs), str(metrics["pages"]),
                         f"mAP@.5 top-10 {metrics['mAP50_top10']:.4f}", f"mAP@.5 {metrics['mAP50']:.4f}",
                         f"mAP {metrics['mAP']:.4f}", f"{speed:.3f}"))
    header = ("model", "train min", "crops/s", "epochs", "test pages", "headline", "all classes", "more", "pages/s")
    print(f"\ndataset {args.data} ({args.pages} pages, seed {args.seed}; generate: {gen}); preset {args.preset}, "
          f"device {args.device}, budget {args.minutes} min per model\n", file=sys.stderr)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    for model in args.models.split(","):
        md = args.runs / f"{model}-{args.preset}" / "eval-test" / "metrics.md"
        if md.is_file():
            print(f"\n{md}:\n{md.read_text()}")


if __name__ == "__main__":
    main()
