"""What every training run shares: the device chosen from ``--device``, the run folder (config, resume
rules, checkpoints written atomically and read back), seeding, the metrics history as CSV + JSON, and
the progress bar."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
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


#: Config fields a resumed run may change: how long and where it trains, nothing that makes it another run.
RESUMABLE_CHANGES = ("epochs", "max_minutes", "device")


def start_run(out: Path, config: Any, resume: bool) -> dict[str, Any] | None:
    """Open the run folder ``out`` for ``config`` (a frozen dataclass with ``to_json``/``from_json``):
    with ``resume``, the last checkpoint's state if there is one (refused if the config differs in
    anything but RESUMABLE_CHANGES); without, a folder that already holds a run is refused.
    Writes ``config.json``."""
    checkpoint_path = out / "checkpoint.pt"
    checkpoint = None
    if resume and checkpoint_path.is_file():
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        saved = type(config).from_json(checkpoint["config"])
        changed = [f.name for f in fields(config) if f.name not in RESUMABLE_CHANGES
                   and getattr(saved, f.name) != getattr(config, f.name)]
        if changed:
            raise DeepScoresError(f"{checkpoint_path}: cannot resume with different {', '.join(changed)}")
    elif not resume and checkpoint_path.exists():
        raise DeepScoresError(f"{checkpoint_path}: a run exists here; pass resume=True or choose another out_dir")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(config.to_json(), indent=1) + "\n")
    return checkpoint


def save_epoch(out: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, config: Any,
               history: list[dict[str, Any]], score: float, best: float, **extra: Any) -> float:
    """End of an epoch: ``checkpoint.pt`` (what resume continues from), ``best.pt`` when ``score`` beats
    ``best``, and the history files. ``extra`` goes into the checkpoint beside the model and optimiser.
    Returns the best score so far."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": config.to_json(),
             "epoch": len(history), "history": history, "rng_state": torch.get_rng_state(), **extra}
    atomic_torch_save(state, out / "checkpoint.pt")
    if score > best:
        best = score
        atomic_torch_save(state, out / "best.pt")
    write_history(out, history)
    return best


def restore(checkpoint: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer
            ) -> tuple[list[dict[str, Any]], int]:
    """Put a checkpoint's model, optimiser and RNG state back; returns (history, epochs done)."""
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["rng_state"])
    return checkpoint["history"], checkpoint["epoch"]


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch; on CPU also make kernels deterministic (same seed, same weights, at no cost there);
    on GPU let cuDNN pick its fastest kernels (runs then agree to float noise only). Restores the
    deterministic flag on exit."""
    torch.manual_seed(seed)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def read_checkpoint(run_dir: str | Path, checkpoint: str = "best") -> tuple[Path, dict[str, Any]]:
    """The state saved in a run folder: ``best.pt`` (else ``checkpoint.pt``), or with ``checkpoint='last'``
    only ``checkpoint.pt``. Errors name the folder or file."""
    if checkpoint not in ("best", "last"):
        raise DeepScoresError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    run = Path(run_dir)
    names = ("best.pt", "checkpoint.pt") if checkpoint == "best" else ("checkpoint.pt",)
    path = next((run / n for n in names if (run / n).is_file()), None)
    if path is None:
        raise DeepScoresError(f"{run}: no best.pt or checkpoint.pt (not a training run folder)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise DeepScoresError(f"{path}: unreadable checkpoint ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise DeepScoresError(f"{path}: not a checkpoint of a deepscores run")
    return path, state
