"""Semantic segmentation scores: a confusion matrix over model indices (0 = background) summed over pages,
and the figures read from it (per-class IoU, mIoU, mIoU of the 10 most frequent classes, pixel
accuracies); plus ``evaluate_segment`` / ``predict_segment``, which run a trained model over pages
(torch is imported only inside those two).

Definitions (``cm[t, p]`` = pixels of true index t predicted as p):
* IoU_c = cm[c, c] / (truth_c + pred_c − cm[c, c]).
* ``mIoU``: mean IoU over the symbol classes present in the truth (background is reported apart as
  ``background_IoU``; a class absent from the truth is not averaged, whatever was predicted).
* ``mIoU_top10``: mean IoU over the 10 symbol classes with most truth pixels (ties: lower id first).
* ``pixel_accuracy``: all pixels, background included (≈ 0.98 by predicting background everywhere);
  ``foreground_pixel_accuracy``: the share of symbol pixels given their exact class.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from deepscores.errors import DeepScoresError
from deepscores.formats.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:  # no torch at import time
    from deepscores.ml.segment_data import LabelMap

TOP_K = 10
OVERLAY_PX = (960, 480)  # (width, height) of the page window shown in an overlay


# -- metrics ----------------------------------------------------------------------------------------
def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_outputs: int) -> np.ndarray:
    """int64 (n, n): ``cm[t, p]`` = pixels with true index t and predicted index p."""
    if truth.shape != pred.shape:
        raise ValueError(f"truth is {truth.shape}, prediction {pred.shape}")
    combined = truth.astype(np.int64).ravel() * num_outputs + pred.astype(np.int64).ravel()
    return np.bincount(combined, minlength=num_outputs * num_outputs).reshape(num_outputs, num_outputs)


def iou_per_index(cm: np.ndarray) -> np.ndarray:
    """IoU of every index; NaN where an index occurs in neither truth nor prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def top_classes(cm: np.ndarray, k: int = TOP_K) -> list[int]:
    """The ``k`` symbol indices (not background) with most truth pixels; ties go to the lower index."""
    truth = cm.sum(axis=1)
    present = [i for i in range(1, len(truth)) if truth[i] > 0]
    return sorted(present, key=lambda i: (-truth[i], i))[:k]


def segmentation_metrics(cm: np.ndarray, label_map: "LabelMap | None" = None, k: int = TOP_K) -> dict[str, Any]:
    """The figures of the module docstring from a confusion matrix; ``per_class`` lists every class that
    occurs in the truth or the prediction (IoU ``None`` for one absent from the truth)."""
    n = cm.shape[0]
    ids = label_map.class_ids if label_map is not None else tuple(range(1, n))
    names = label_map.class_names if label_map is not None else tuple(str(i) for i in ids)
    if len(ids) + 1 != n:
        raise ValueError(f"confusion matrix has {n} indices, the label map {len(ids) + 1}")
    truth, pred, iou = cm.sum(axis=1), cm.sum(axis=0), iou_per_index(cm)
    present = [i for i in range(1, n) if truth[i] > 0]
    top = top_classes(cm, k)
    total, foreground = int(truth.sum()), int(truth[1:].sum())

    def mean(indices: list[int]) -> float | None:
        return round(float(np.mean(iou[indices])), 5) if indices else None

    per_class = {names[i - 1]: {"class_id": int(ids[i - 1]),
                                "IoU": round(float(iou[i]), 5) if truth[i] > 0 else None,
                                "truth_px": int(truth[i]), "pred_px": int(pred[i])}
                 for i in range(1, n) if truth[i] > 0 or pred[i] > 0}
    return {
        "mIoU": mean(present),
        "mIoU_top10": mean(top),
        "top10_classes": [names[i - 1] for i in top],
        "classes_in_truth": len(present),
        "background_IoU": round(float(iou[0]), 5) if truth[0] > 0 else None,
        "pixel_accuracy": round(float(np.trace(cm)) / total, 5) if total else None,
        "foreground_pixel_accuracy": round(float(np.diag(cm)[1:].sum()) / foreground, 5) if foreground else None,
        "per_class": per_class,
    }


def metrics_table(metrics: dict[str, Any]) -> str:
    """Markdown: the headline figures, then one row per class, most truth pixels first."""
    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.4f}"

    lines = ["| figure | value |", "|---|---:|"]
    lines += [f"| {key} | {fmt(metrics[key])} |" for key in
              ("mIoU", "mIoU_top10", "background_IoU", "pixel_accuracy", "foreground_pixel_accuracy")]
    lines += ["", "| class | id | IoU | truth px | predicted px |", "|---|---:|---:|---:|---:|"]
    rows = sorted(metrics["per_class"].items(), key=lambda kv: (-kv[1]["truth_px"], -kv[1]["pred_px"], kv[0]))
    lines += [f"| {name} | {m['class_id']} | {fmt(m['IoU'])} | {m['truth_px']} | {m['pred_px']} |" for name, m in rows]
    return "\n".join(lines) + "\n"


# -- overlays ---------------------------------------------------------------------------------------
def _busiest_window(labels: np.ndarray, size: tuple[int, int], cell: int = 16) -> tuple[int, int]:
    """Top-left (y, x) of the ``size`` (w, h) window with most symbol pixels, searched on a ``cell`` grid."""
    height, width = labels.shape
    w, h = min(size[0], width), min(size[1], height)
    rows, cols = height // cell, width // cell
    grid = (labels[:rows * cell, :cols * cell] > 0).reshape(rows, cell, cols, cell).sum(axis=(1, 3))
    table = np.pad(grid.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    gh, gw = max(1, h // cell), max(1, w // cell)
    sums = table[gh:, gw:] - table[:-gh, gw:] - table[gh:, :-gw] + table[:-gh, :-gw]
    if sums.size == 0:
        return 0, 0
    gy, gx = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return min(gy * cell, height - h), min(gx * cell, width - w)


def overlay_png(image: np.ndarray, truth_ids: np.ndarray, pred_ids: np.ndarray) -> bytes:
    """PNG of three panels side by side — page | truth mask | predicted mask — over the page's busiest window,
    masks in ``deepscores.show.class_colour`` colours (background white)."""
    from deepscores.show import class_colour

    palette = np.array([class_colour(i) for i in range(256)], np.uint8)
    y, x = _busiest_window(truth_ids != 255, OVERLAY_PX)
    window = (slice(y, y + OVERLAY_PX[1]), slice(x, x + OVERLAY_PX[0]))
    page = np.repeat(image[window][..., None], 3, axis=2)
    gap = np.full((page.shape[0], 8, 3), 160, np.uint8)
    panels = np.concatenate([page, gap, palette[truth_ids[window]], gap, palette[pred_ids[window]]], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(panels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


# -- running a model ----------------------------------------------------------------------------------
def evaluate_segment(run_dir: str | Path, data_dir: str | Path, split: str = "test", out: str | Path | None = None,
                     device: str = "auto", max_pages: int | None = None, overlays: int = 3,
                     checkpoint: str = "best") -> dict[str, Any]:
    """Predict every page of ``split`` (the first ``max_pages``, sorted, when given) with tiled inference and
    write the metrics to ``out`` (default ``run_dir/eval-<split>/metrics.json``), with ``metrics.md`` and
    ``overlay-<page>.png`` for the first ``overlays`` pages beside it; returns the metrics."""
    import torch

    from deepscores.ml.runs import resolve_device
    from deepscores.ml.segment_data import load_page, pick_pages, read_label_map
    from deepscores.ml.segment_infer import predict_page
    from deepscores.ml.train_segment import load_segment_run

    dev = resolve_device(device)
    model, config = load_segment_run(run_dir, dev, checkpoint)
    label_map = config.label_map
    if read_label_map(data_dir) != label_map:
        raise DeepScoresError(f"{Path(data_dir) / 'dataset.json'}: classes differ from the ones "
                              f"{run_dir} was trained on")
    pages = pick_pages(data_dir, split)[:max_pages]
    if not pages:
        raise DeepScoresError(f"{Path(data_dir) / 'splits' / f'{split}.txt'}: no pages in split {split!r}")
    out_file = Path(out) if out is not None else Path(run_dir) / f"eval-{split}" / "metrics.json"
    folder = out_file.parent
    lut, ids, n = label_map.index_lut(), label_map.id_lut(), label_map.num_outputs
    cm = np.zeros((n, n), np.int64)
    inference_s = 0.0
    for i, name in enumerate(pages):
        image, labels = load_page(data_dir, name, lut)
        start = time.perf_counter()
        pred = predict_page(model, image, dev, config.tile_px, config.overlap_px)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        inference_s += time.perf_counter() - start
        cm += confusion_matrix(labels, pred, n)
        if i < overlays:
            atomic_write_bytes(folder / f"overlay-{name}.png", overlay_png(image, ids[labels], ids[pred]))
    metrics = {"split": split, "pages": len(pages), **segmentation_metrics(cm, label_map),
               "pages_per_s": round(len(pages) / inference_s, 3), "inference_seconds": round(inference_s, 1),
               "run": str(Path(run_dir).resolve()), "data_dir": str(Path(data_dir).resolve()),
               "model": config.model, "checkpoint": checkpoint, "device": dev.type,
               "tile_px": config.tile_px, "overlap_px": config.overlap_px}
    atomic_write_text(out_file, json.dumps(metrics, indent=1) + "\n")
    title = f"# {config.model} on {split} ({len(pages)} pages)\n\n"
    atomic_write_text(folder / "metrics.md", title + metrics_table(metrics))
    return metrics


def predict_segment(run_dir: str | Path, images: str | Path | Sequence[str | Path], out_dir: str | Path,
                    device: str = "auto", checkpoint: str = "best") -> list[Path]:
    """Write each image's predicted class mask (class ids, 255 = background; 8-bit PNG) under the image's
    file name in ``out_dir``. ``images``: a folder (its ``*.png``, sorted) or a list of image files (any
    format Pillow reads; colour is converted to grey). Returns the written paths."""
    from deepscores.formats.pngio import write_png
    from deepscores.ml.runs import resolve_device
    from deepscores.ml.segment_infer import predict_page
    from deepscores.ml.train_segment import load_segment_run

    dev = resolve_device(device)
    model, config = load_segment_run(run_dir, dev, checkpoint)
    ids = config.label_map.id_lut()
    if isinstance(images, (str, Path)) and Path(images).is_dir():
        files = sorted(Path(images).glob("*.png"))
    else:
        files = [Path(images)] if isinstance(images, (str, Path)) else [Path(f) for f in images]
    out = Path(out_dir)
    written = []
    for path in files:
        try:
            with Image.open(path) as opened:
                image = np.array(opened.convert("L"), dtype=np.uint8)
        except FileNotFoundError:
            raise DeepScoresError(f"{path}: no such file") from None
        except (OSError, SyntaxError, ValueError) as exc:  # Pillow's ways of saying "not an image"
            raise DeepScoresError(f"{path}: unreadable image ({' '.join(str(exc).split())})") from None
        target = out / f"{path.stem}.png"
        write_png(target, ids[predict_page(model, image, dev, config.tile_px, config.overlap_px)])
        written.append(target)
    return written
