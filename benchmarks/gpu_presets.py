"""Every trainer's `gpu` preset for a few minutes on one dataset, then its evaluation: a table (not a test).

    python benchmarks/gpu_presets.py DATA [--minutes 1.5] [--device cuda] [--json OUT.json]

DATA is a generated dataset (`deepscores generate --pages 120 --patches-per-class 600`). Each trainer
runs its `gpu` preset under ``--minutes`` (Faster R-CNN and the U-Net under two thirds of it), with its
own validation each epoch, then the run's best checkpoint is scored on the test split: the classifier
on every test patch, the detectors on the first 8 / 4 test pages, the segmenter on the first 4. The
point is that every GPU path runs (CUDA, cuDNN autotuning, the segmenter's bf16 autocast, 8 loader
workers) and what it costs; minutes of training on a hundred pages are not the models' accuracy
(docs/gpu.md).
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import torch

from deepscores.evaluation.segment import evaluate_segment
from deepscores.ml.evaluate_classify import evaluate_classify
from deepscores.ml.predict_detect import evaluate_detect_run
from deepscores.ml.train_classify import train_classify
from deepscores.ml.train_detect import train_detect
from deepscores.ml.train_segment import train_segment


def _history(run: Path) -> list[dict]:
    path = run / "history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _steady_rate(history: list[dict], key: str) -> float | None:
    """Mean rate of the complete epochs after the first (the first pays for cuDNN autotuning and warm-up)."""
    rates = [row[key] for row in history[1:] if row.get("complete") and key in row]
    return sum(rates) / len(rates) if rates else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--minutes", type=float, default=1.5)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--runs", type=Path, default=Path("/tmp/deepscores-gpu-runs"))
    ap.add_argument("--json", type=Path, default=None, help="also write every row and history here")
    args = ap.parse_args()
    data, runs, dev, minutes = args.data, args.runs, args.device, args.minutes
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {name}")

    jobs = [
        ("classifier (resnet_paper, batch 256)", "samples_per_s", "val_macro_accuracy",
         lambda: train_classify(data, runs / "cls", preset="gpu", device=dev, progress=False, max_minutes=minutes,
                                epochs=40),
         lambda: evaluate_classify(runs / "cls", data, device=dev), ("macro_accuracy", "accuracy")),
        ("FCN detector (fcn_detector_wide, 768² × 16)", "crops_per_s", "val_mAP50",
         lambda: train_detect(data, runs / "fcn", "fcn", "gpu", device=dev, progress=False, max_minutes=minutes,
                              workers=8),
         lambda: evaluate_detect_run(runs / "fcn", data, device=dev, max_pages=8, overlays=1, progress=False),
         ("mAP50", "mAP")),
        ("Faster R-CNN (ResNet-50-FPN, 800² × 8)", "crops_per_s", "val_mAP50",
         lambda: train_detect(data, runs / "frcnn", "faster-rcnn", "gpu", device=dev, progress=False,
                              max_minutes=minutes * 2 / 3, workers=8),
         lambda: evaluate_detect_run(runs / "frcnn", data, device=dev, max_pages=4, overlays=0, progress=False),
         ("mAP50", "mAP")),
        ("U-Net segmenter (unet_gpu, 512² × 16)", "crops_per_s", "val_mIoU",
         lambda: train_segment(data, runs / "seg", "gpu", device=dev, progress=False, max_minutes=minutes * 2 / 3,
                               workers=8),
         lambda: evaluate_segment(runs / "seg", data, device=dev, max_pages=4, overlays=1), ("mIoU", "mIoU_top10")),
    ]
    rows = []
    for label, rate_key, val_key, train, evaluate, metric_keys in jobs:
        row: dict = {"model": label}
        try:
            start = time.perf_counter()
            run = Path(train())
            row["train_s"] = time.perf_counter() - start
            history = _history(run)
            row["epochs"] = len(history)
            row["rate"] = _steady_rate(history, rate_key)
            row["best_val"] = max((h[val_key] for h in history if val_key in h), default=None)
            start = time.perf_counter()
            metrics = evaluate()
            row["eval_s"] = time.perf_counter() - start
            row["test"] = {k: metrics.get(k) for k in metric_keys}
            row["history"] = history
        except Exception as exc:  # one broken path must not hide the others' figures
            traceback.print_exc()
            row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        rows.append(row)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0

    print("| model | train s | epochs | steady rate /s (after epoch 1) | best val | eval s | test |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | failed: {r['error']} | | | | | |")
            continue
        rate = f"{r['rate']:.0f}" if r["rate"] is not None else "-"
        best = f"{r['best_val']:.3f}" if r["best_val"] is not None else "-"
        test = ", ".join(f"{k} {v:.3f}" for k, v in r["test"].items() if v is not None)
        print(f"| {r['model']} | {r['train_s']:.0f} | {r['epochs']} | {rate} | {best} | {r['eval_s']:.1f} | {test} |")
    print(f"peak GPU memory: {peak:.1f} GiB")
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "device": name, "rows": rows,
                                         "peak_gib": peak}, indent=1) + "\n")


if __name__ == "__main__":
    main()
