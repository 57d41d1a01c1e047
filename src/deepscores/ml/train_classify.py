"""Train a patch classifier. Reads top to bottom: config, seed, data, model, optimiser, loop (train one
epoch, evaluate on val, checkpoint), history.

A run folder holds ``config.json`` (the frozen config), ``checkpoint.pt`` (the last epoch: model,
optimiser, RNG, config, epoch, history; what ``resume=True`` continues from), ``best.pt`` (the epoch
with the best val macro accuracy; what evaluation loads) and ``history.csv`` / ``history.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from deepscores.errors import DeepScoresError
from deepscores.ml.datasets import PatchDataset, make_loader
from deepscores.ml.metrics import macro_accuracy
from deepscores.ml.models import create_model
from deepscores.ml.runs import resolve_device, restore, save_epoch, seeded, start_run, training_progress

#: Training presets: the model and the batch size that suit a machine.
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"model": "resnet_small", "batch_size": 64, "epochs": 15},   # 2 CPU cores, ≈ 500 samples/s
    "paper": {"model": "resnet_paper", "batch_size": 64, "epochs": 10},   # the paper's size; slow on CPU
    "gpu": {"model": "resnet_paper", "batch_size": 256, "epochs": 10},    # the paper's size on one GPU
}


@dataclass(frozen=True)
class TrainConfig:
    data_dir: str
    preset: str
    model: str
    epochs: int
    batch_size: int
    device: str
    seed: int = 0
    holdout_font: str | None = None
    lr: float = 1e-3                            # Adam's defaults, as in the paper
    betas: tuple[float, float] = (0.9, 0.999)
    max_shift_px: int = 3                       # training augmentation: random translation
    class_balance: float = 0.5                  # draw class c ∝ count_c ** (1 − balance); see sample_weights
    max_minutes: float | None = None            # stop (and checkpoint) once training has used this much time

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["betas"] = tuple(data["betas"])
        return cls(**data)


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(true labels, predicted labels, mean loss) over one pass of ``loader``."""
    model.eval()
    true, pred, loss_sum = [], [], 0.0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        true.append(y.cpu())
        pred.append(logits.argmax(1).cpu())
    true_t, pred_t = torch.cat(true), torch.cat(pred)
    return true_t, pred_t, loss_sum / max(1, len(true_t))


def train_classify(data_dir: str | Path, out_dir: str | Path, preset: str = "small", epochs: int | None = None,
                   batch_size: int | None = None, device: str = "auto", seed: int = 0,
                   holdout_font: str | None = None, resume: bool = False, progress: bool = True,
                   max_minutes: float | None = None) -> Path:
    """Train ``preset``'s model on ``data_dir``'s train split, validating each epoch; returns ``out_dir``.

    ``epochs`` / ``batch_size`` default to the preset's. ``resume=True`` continues from
    ``out_dir/checkpoint.pt`` up to ``epochs`` in total (same data, model and seed required).
    ``max_minutes`` bounds the training time of this call: the epoch running when it expires is cut short,
    validated and checkpointed, and training stops.
    """
    # -- config ------------------------------------------------------------------------------------
    if preset not in PRESETS:
        raise DeepScoresError(f"unknown training preset {preset!r}; available: {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    out = Path(out_dir)
    dev = resolve_device(device)
    config = TrainConfig(data_dir=str(Path(data_dir).resolve()), preset=preset, model=spec["model"],
                         epochs=epochs if epochs is not None else spec["epochs"],
                         batch_size=batch_size if batch_size is not None else spec["batch_size"],
                         device=dev.type, seed=seed, holdout_font=holdout_font, max_minutes=max_minutes)
    if config.epochs < 1 or config.batch_size < 1:
        raise DeepScoresError(f"epochs and batch_size must be >= 1, got {config.epochs} and {config.batch_size}")
    checkpoint = start_run(out, config, resume)

    # -- seed --------------------------------------------------------------------------------------
    with seeded(config.seed, dev):
        # -- data ----------------------------------------------------------------------------------
        train_set = PatchDataset(config.data_dir, "train", holdout_font=config.holdout_font)
        val_set = PatchDataset(config.data_dir, "val", holdout_font=config.holdout_font)
        train_loader = make_loader(train_set, config.batch_size, True, dev, config.seed,
                                   config.max_shift_px, config.class_balance)
        val_loader = make_loader(val_set, config.batch_size * 2, False, dev)
        names = train_set.class_names

        # -- model and optimiser -------------------------------------------------------------------
        model = create_model(config.model, num_classes=len(names)).to(dev)
        if dev.type == "cpu":
            model = model.to(memory_format=torch.channels_last)  # ≈ 1.4× faster convolutions on CPU
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas)
        history: list[dict[str, Any]] = []
        start_epoch = 0
        if checkpoint is not None:
            history, start_epoch = restore(checkpoint, model, optimizer)
        best = max((row["val_macro_accuracy"] for row in history), default=-1.0)

        # -- loop ----------------------------------------------------------------------------------
        started = time.perf_counter()
        budget_s = math.inf if config.max_minutes is None else 60.0 * config.max_minutes
        # Every call trains at least one batch, so it always leaves a checkpoint to evaluate, however
        # small the budget (the loader's start alone can outlast a few seconds).
        trained = False
        with training_progress(progress) as bar:
            for epoch in range(start_epoch, config.epochs):
                if hasattr(train_loader, "set_epoch"):
                    train_loader.set_epoch(epoch)
                else:
                    train_loader.generator.manual_seed(config.seed * 1_000_003 + epoch)
                model.train()
                task = bar.add_task(f"epoch {epoch + 1}/{config.epochs}", total=len(train_loader),
                                    loss=0.0, acc=0.0, rate=0.0)
                seen, correct, loss_sum, epoch_start, cut_short = 0, 0, 0.0, time.perf_counter(), False
                for x, y in train_loader:
                    if trained and time.perf_counter() - started > budget_s:
                        cut_short = True
                        break
                    trained = True
                    x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                    logits = model(x)
                    loss = F.cross_entropy(logits, y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    seen += len(y)
                    correct += (logits.argmax(1) == y).sum().item()
                    loss_sum += loss.item() * len(y)
                    bar.update(task, advance=1, loss=loss_sum / seen, acc=correct / seen,
                               rate=seen / (time.perf_counter() - epoch_start))
                train_seconds = time.perf_counter() - epoch_start
                if seen == 0:
                    break  # budget spent before this epoch began: nothing new to evaluate or save

                # -- evaluate ------------------------------------------------------------------------
                y_true, y_pred, val_loss = predict(model, val_loader, dev)
                row = {"epoch": epoch + 1, "train_loss": round(loss_sum / seen, 5),
                       "train_accuracy": round(correct / seen, 5), "val_loss": round(val_loss, 5),
                       "val_accuracy": round(float((y_true == y_pred).float().mean()), 5),
                       "val_macro_accuracy": round(macro_accuracy(y_true.numpy(), y_pred.numpy()), 5),
                       "samples": seen, "samples_per_s": round(seen / train_seconds, 1),
                       "seconds": round(train_seconds, 1), "complete": not cut_short}
                history.append(row)
                bar.update(task, description=f"epoch {epoch + 1}/{config.epochs} val macro {row['val_macro_accuracy']:.4f}")

                # -- checkpoint ----------------------------------------------------------------------
                best = save_epoch(out, model, optimizer, config, history, row["val_macro_accuracy"], best,
                                  class_names=names)
                if cut_short:
                    break
    return out
