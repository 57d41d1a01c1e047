"""Evaluate a trained patch classifier on one split: ``metrics.json`` (macro and overall accuracy, per
class accuracy and support, the most confused pairs), ``per_class.md`` and ``confusion.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepscores.errors import DeepScoresError
from deepscores.formats.atomic import atomic_write_text
from deepscores.ml.datasets import PatchDataset, make_loader
from deepscores.ml.metrics import accuracy, confusion_matrix, macro_accuracy, per_class_accuracy, top_confusions
from deepscores.ml.models import create_model
from deepscores.ml.runs import read_checkpoint, resolve_device
from deepscores.ml.train_classify import TrainConfig, predict


def load_run(run_dir: str | Path, device: torch.device,
             checkpoint: str = "best") -> tuple[torch.nn.Module, TrainConfig, list[str]]:
    """The model of ``best.pt`` (else ``checkpoint.pt``; ``checkpoint='last'``: only ``checkpoint.pt``)
    in ``run_dir``, in eval mode on ``device``."""
    path, state = read_checkpoint(run_dir, checkpoint)
    try:
        config = TrainConfig.from_json(state["config"])
        model = create_model(config.model, num_classes=len(state["class_names"]))
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise DeepScoresError(f"{path}: unreadable checkpoint ({' '.join(str(exc).split())[:200]})") from None
    return model.to(device).eval(), config, list(state["class_names"])


def per_class_table(per_class: dict[str, dict[str, Any]]) -> str:
    """Markdown table, worst class first (the ones to look at)."""
    rows = sorted(per_class.items(), key=lambda kv: (kv[1]["accuracy"], -kv[1]["support"], kv[0]))
    lines = ["| class | accuracy | support |", "|---|---:|---:|"]
    lines += [f"| {name} | {m['accuracy']:.4f} | {m['support']} |" for name, m in rows]
    return "\n".join(lines) + "\n"


def plot_confusion(cm: np.ndarray, names: list[str], confused: list[dict[str, Any]], title: str, path: Path) -> None:
    """Row-normalised confusion matrix of the classes present (true or predicted), top confusions listed."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on training machines
    import matplotlib.pyplot as plt

    present = np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))
    sub = cm[np.ix_(present, present)].astype(float)
    rows = sub.sum(axis=1, keepdims=True)
    norm = np.divide(sub, rows, out=np.zeros_like(sub), where=rows > 0)
    size = max(6.0, 0.22 * len(present) + 3)
    fig, ax = plt.subplots(figsize=(size, size + 1.2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    labels = [names[i] for i in present]
    ax.set_xticks(range(len(present)), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(present)), labels, fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    text = "; ".join(f"{c['true']}→{c['predicted']} ×{c['count']}" for c in confused) or "no confusions"
    ax.set_title(f"{title}\ntop confusions: {text}", fontsize=8, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_classify(run_dir: str | Path, data_dir: str | Path, split: str = "test", out: str | Path | None = None,
                      holdout_font: str | None = None, device: str = "auto", batch_size: int = 256,
                      checkpoint: str = "best") -> dict[str, Any]:
    """Score the run's best model on ``split`` of ``data_dir``; write and return the metrics.

    ``holdout_font=None`` uses the run's own hold-out setting (a model trained without Petaluma is tested
    on the Petaluma hold-out set), so the usual call needs only the run and the data. ``out`` defaults to
    ``run_dir/eval-<split>``. ``checkpoint``: ``'best'`` (best val macro accuracy) or ``'last'`` epoch.
    """
    dev = resolve_device(device)
    model, config, names = load_run(run_dir, dev, checkpoint)
    font = holdout_font if holdout_font is not None else config.holdout_font
    dataset = PatchDataset(data_dir, split, holdout_font=font)
    if dataset.class_names != names:
        raise DeepScoresError(f"{data_dir}: class list differs from the one {run_dir} was trained on")
    if dev.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    y_true, y_pred, loss = predict(model, make_loader(dataset, batch_size, False, dev), dev)
    t, p = y_true.numpy(), y_pred.numpy()
    cm = confusion_matrix(t, p, len(names))
    class_acc, support = per_class_accuracy(t, p, len(names))
    confused = top_confusions(cm, names, k=5)
    # Splits are by score, so a rare class can occur only in test scores; the model cannot name a class it
    # never saw, so the macro figure over the classes it was trained on is reported beside the headline.
    trained = torch.bincount(PatchDataset(data_dir, "train", holdout_font=font).labels, minlength=len(names))
    seen = (support > 0) & (trained.numpy() > 0)
    per_class = {names[i]: {"accuracy": round(float(class_acc[i]), 5), "support": int(support[i])}
                 for i in np.flatnonzero(support)}
    metrics = {"split": split, "holdout_font": font, "samples": int(len(t)), "classes_present": len(per_class),
               "macro_accuracy": round(macro_accuracy(t, p), 5), "accuracy": round(accuracy(t, p), 5),
               "macro_accuracy_trained_classes": round(float(np.mean(class_acc[seen])), 5) if seen.any() else None,
               "classes_without_training_patches": [names[i] for i in np.flatnonzero((support > 0) & ~seen)],
               "loss": round(loss, 5), "top_confusions": confused, "per_class": per_class,
               "run": str(Path(run_dir).resolve()), "data_dir": str(Path(data_dir).resolve()), "model": config.model,
               "checkpoint": checkpoint}
    folder = Path(out) if out is not None else Path(run_dir) / f"eval-{split}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    atomic_write_text(folder / "per_class.md", per_class_table(per_class))
    title = (f"{config.model} on {split}{f' (hold-out {font})' if font else ''}: "
             f"macro {metrics['macro_accuracy']:.4f}, overall {metrics['accuracy']:.4f}")
    plot_confusion(cm, names, confused, title, folder / "confusion.png")
    return metrics
