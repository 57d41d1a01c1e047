"""What every training run shares: the device chosen from ``--device``, checkpoints written atomically,
the metrics history as CSV + JSON, and the progress bar."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from deepscores.errors import DeepScoresError
from deepscores.formats.atomic import atomic_write_text


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when torch sees one, else CPU; ``cuda`` without a GPU is an error, not a silent CPU run."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeepScoresError(f"device {device!r} asked for, but torch sees no CUDA device")
    if device != "cpu" and not device.startswith("cuda"):
        raise DeepScoresError(f"unknown device {device!r}; expected auto, cpu or cuda")
    return torch.device(device)


def atomic_torch_save(obj: Any, path: Path) -> None:
    # temp + rename: a run killed mid-save leaves the previous checkpoint intact.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    """``history.json`` and ``history.csv`` (one row per epoch or evaluation), both atomically."""
    atomic_write_text(out / "history.json", json.dumps(history, indent=1) + "\n")
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(out / "history.csv", buffer.getvalue())


def training_progress(enabled: bool, unit: str = "samples") -> Progress:
    """A bar per epoch: done/total, running loss and accuracy, throughput and ETA."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:.3f} {task.fields[rate]:.1f} "
                               + unit + "/s"),
                    TimeRemainingColumn(), disable=not enabled, transient=False)
