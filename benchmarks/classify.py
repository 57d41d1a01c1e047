"""Classification baseline on CPU: generate patches, train the `small` preset under a time budget,
evaluate on the test split and on the Petaluma font hold-out, and time the `paper` preset.
Prints a table (not a test). Run: python benchmarks/classify.py [--minutes 30] [--holdout-minutes 30]
[--font-mode every|score] [--pages 5000] [--data DIR]. The default dataset engraves every score in all
five fonts (docs/classification.md says why)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deepscores.ml.evaluate_classify import evaluate_classify
from deepscores.ml.models import create_model
from deepscores.ml.models.resnet import count_conv_layers, count_parameters
from deepscores.ml.train_classify import train_classify


def generate(out: Path, pages: int, per_class: int, font_mode: str) -> str:
    if (out / "dataset.json").is_file():
        return "reused"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "deepscores.cli", "generate", "--pages", str(pages), "--out", str(out),
                    "--patches-per-class", str(per_class), "--font-mode", font_mode],
                   check=True, stdout=subprocess.DEVNULL)
    return f"{time.perf_counter() - start:.0f} s"


def train_and_test(data: Path, run: Path, minutes: float, epochs: int, holdout: str | None) -> dict:
    shutil.rmtree(run, ignore_errors=True)  # a fresh run each time: the benchmark measures training from scratch
    start = time.perf_counter()
    train_classify(data, run, preset="small", epochs=epochs, device="cpu", holdout_font=holdout,
                   max_minutes=minutes, progress=False)
    wall = time.perf_counter() - start
    history = json.loads((run / "history.json").read_text())
    metrics = evaluate_classify(run, data, "test", device="cpu")
    samples = sum(r["samples"] for r in history)
    return {"wall_s": wall, "epochs": len(history), "samples_per_s": samples / sum(r["seconds"] for r in history),
            "macro": metrics["macro_accuracy"], "macro_trained": metrics["macro_accuracy_trained_classes"],
            "untrained": len(metrics["classes_without_training_patches"]), "acc": metrics["accuracy"], "test_samples": metrics["samples"],
            "classes": metrics["classes_present"], "best_val_macro": max(r["val_macro_accuracy"] for r in history),
            "confused": metrics["top_confusions"][:3]}


def paper_speed(samples: int = 256, batch: int = 32) -> tuple[int, int, float]:
    model = create_model("resnet_paper", 124).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters())
    x = torch.rand(batch, 1, 220, 120).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 124, (batch,))
    steps = samples // batch
    for i in range(steps + 1):
        if i == 1:  # the first step allocates; time the rest
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return count_conv_layers(model), count_parameters(model), steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("/tmp/deepscores-classify-bench"))
    parser.add_argument("--pages", type=int, default=5000,
                        help="with --font-mode every: the scores of about pages/5 one-font pages, in all five fonts")
    parser.add_argument("--patches-per-class", type=int, default=3000)
    parser.add_argument("--font-mode", default="every", choices=("score", "every"),
                        help="every: each score in all five fonts, so rare classes are trained in every font")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--holdout-minutes", type=float, default=30.0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--runs", type=Path, default=Path("/tmp/deepscores-classify-runs"))
    args = parser.parse_args()

    gen = generate(args.data, args.pages, args.patches_per_class, args.font_mode)
    recorded = json.loads((args.data / "dataset.json").read_text())
    mode = recorded["options"].get("font_mode", "score")
    rows = [("generate", f"{recorded['counts']['pages']} pages from {recorded['counts']['scores_ok']} scores, "
             f"--font-mode {mode}, ≤ {args.patches_per_class}/class", f"wall {gen}")]
    main_run = train_and_test(args.data, args.runs / "small", args.minutes, args.epochs, None)
    rows.append(("small, test split", f"{main_run['epochs']} epochs in {main_run['wall_s'] / 60:.1f} min "
                 f"({args.minutes:g} min budget), {main_run['samples_per_s']:.0f} samples/s",
                 f"macro {main_run['macro']:.4f}, overall {main_run['acc']:.4f} "
                 f"({main_run['test_samples']} patches, {main_run['classes']} classes; best val macro "
                 f"{main_run['best_val_macro']:.4f}); macro over the {main_run['classes'] - main_run['untrained']} "
                 f"classes with training patches {main_run['macro_trained']:.4f}"))
    print(*rows[-1], sep=" | ", flush=True)
    if args.holdout_minutes > 0:
        hold = train_and_test(args.data, args.runs / "small-holdout-petaluma", args.holdout_minutes, args.epochs,
                              "Petaluma")
        rows.append(("small, Petaluma hold-out", f"{hold['epochs']} epochs in {hold['wall_s'] / 60:.1f} min "
                     f"({args.holdout_minutes:g} min budget), {hold['samples_per_s']:.0f} samples/s",
                     f"macro {hold['macro']:.4f}, overall {hold['acc']:.4f} "
                     f"({hold['test_samples']} patches, {hold['classes']} classes); macro over the "
                     f"{hold['classes'] - hold['untrained']} classes with training patches {hold['macro_trained']:.4f}"))
        print(*rows[-1], sep=" | ", flush=True)
    convs, params, rate = paper_speed()
    rows.append(("paper preset", f"{convs} conv layers, {params / 1e6:.2f} M parameters",
                 f"{rate:.0f} train samples/s (CPU, batch 32)"))
    rows.append(("torch", f"{torch.__version__}, {torch.get_num_threads()} threads", sys.platform))
    print()
    print("| what | how | result |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for c in main_run["confused"]:
        print(f"confused (test): {c['true']} → {c['predicted']} ×{c['count']}")


if __name__ == "__main__":
    main()
