"""Whole-page prediction with a trained detector, and its evaluation on a dataset split.

``predict_detect`` writes the COCO results format (``[{image_id, category_id, bbox [x, y, w, h], score}]``,
plus ``file_name``), the file any COCO tool and ``deepscores evaluate detect --predictions`` read.
Image ids: those of the dataset's ``coco/<split>.json`` that lists the image (found next to an
``images_png/`` folder or given with ``ground_truth``); images no COCO file lists get ids 1, 2, … in
the order given.

``evaluate_detect_run`` predicts every page of a split and scores it with the COCO protocol without a
detection cap (``deepscores.evaluation``), adding the mean APs over the split's ten most frequent
classes, inference speed, a markdown table and overlay PNGs (``deepscores show``'s prediction panel).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from deepscores.errors import DeepScoresError
from deepscores.evaluation import evaluate_detections, load_coco_ground_truth, load_predictions
from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.pngio import read_png
from deepscores.ml.detect_data import ClassIndex, load_split, most_frequent_classes
from deepscores.ml.detectors import detect_page, preset_of
from deepscores.ml.runs import resolve_device
from deepscores.ml.train_detect import load_detector

TOP_CLASSES = 10


def _bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]:.2f} pages/s"), TimeRemainingColumn(), disable=not enabled)


def _image_ids(images: Sequence[Path], ground_truth: str | Path | None) -> dict[Path, int]:
    """Each image's COCO id from the COCO files that list it; unlisted images numbered after."""
    files: list[Path] = []
    if ground_truth is not None:
        files.append(Path(ground_truth))
    else:
        for folder in sorted({p.resolve().parent for p in images}):
            if folder.name == "images_png":
                files.extend(sorted((folder.parent / "coco").glob("*.json")))
    by_name: dict[str, int] = {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            by_name.update({str(im["file_name"]): int(im["id"]) for im in data["images"]})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DeepScoresError(f"{path}: cannot read image ids from this COCO file ({type(exc).__name__}: {exc})") from None
    ids = {p: by_name[p.name] for p in images if p.name in by_name}
    next_id = 1
    for p in images:
        if p not in ids:
            while next_id in set(ids.values()):
                next_id += 1
            ids[p] = next_id
            next_id += 1
    return ids


def results_of(found, classes: ClassIndex, image_id: int, file_name: str) -> list[dict[str, Any]]:
    """COCO result rows of one page's detections (boxes rounded to 1/100 px, scores to 1e-5)."""
    class_ids = classes.to_class_id(found.labels)
    rows = []
    for (x0, y0, x1, y1), score, class_id in zip(found.boxes.tolist(), found.scores.tolist(), class_ids.tolist()):
        rows.append({"image_id": image_id, "category_id": class_id,
                     "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                     "score": round(score, 5), "file_name": file_name})
    return rows


def predict_images(run_dir: str | Path, images: Sequence[str | Path], device: str = "auto",
                   score_threshold: float = 0.05, ground_truth: str | Path | None = None,
                   progress: bool = True, tile_px: int | None = None) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """COCO result rows for ``images`` and the timing (pages, seconds, pages/s)."""
    dev = resolve_device(device)
    config, model = load_detector(run_dir, dev)
    preset = preset_of(config.detector, config.preset)
    classes = ClassIndex(config.class_ids)
    paths = [Path(p) for p in images]
    if not paths:
        raise DeepScoresError("no images to predict")
    ids = _image_ids(paths, ground_truth)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    with _bar(progress) as bar:
        task = bar.add_task("predict", total=len(paths), rate=0.0)
        for done, path in enumerate(paths, 1):
            image = read_png(path)
            if image.dtype != np.uint8:
                raise DeepScoresError(f"{path}: expected an 8-bit greyscale page, found {image.dtype}")
            found = detect_page(config.detector, model, image, preset, dev, score_threshold, tile_px=tile_px)
            rows.extend(results_of(found, classes, ids[path], path.name))
            bar.update(task, advance=1, rate=done / (time.perf_counter() - start))
    seconds = time.perf_counter() - start
    return rows, {"pages": len(paths), "seconds": round(seconds, 2), "pages_per_s": round(len(paths) / seconds, 3)}


def predict_detect(run_dir: str | Path, images: Sequence[str | Path], out: str | Path, device: str = "auto",
                   score_threshold: float = 0.05, ground_truth: str | Path | None = None,
                   progress: bool = True) -> Path:
    """``deepscores predict`` for a detection run: write the COCO results JSON ``out``."""
    rows, _ = predict_images(run_dir, images, device, score_threshold, ground_truth, progress)
    out = Path(out)
    atomic_write_text(out, json.dumps(rows, separators=(",", ":")) + "\n")
    return out


def evaluate_detect_run(run_dir: str | Path, data_dir: str | Path, split: str = "test", out: str | Path | None = None,
                        device: str = "auto", max_pages: int | None = None, overlays: int = 3,
                        score_threshold: float = 0.05, progress: bool = True) -> dict[str, Any]:
    """Predict every page of ``split`` (or the first ``max_pages``), score with the COCO protocol (no cap),
    and write ``metrics.json``, ``metrics.md``, ``predictions.json`` and overlays into ``out``'s folder
    (default ``RUN/eval-<split>/``). Returns the metrics."""
    run, data = Path(run_dir), Path(data_dir)
    out_file = Path(out) if out is not None else run / f"eval-{split}" / "metrics.json"
    folder = out_file.parent
    folder.mkdir(parents=True, exist_ok=True)
    split_data = load_split(data, split)
    pages = split_data.pages[:max_pages] if max_pages else split_data.pages
    if not pages:
        raise DeepScoresError(f"{split_data.source}: split {split!r} has no pages")
    gt_path = split_data.source
    rows, timing = predict_images(run, [p.image_path for p in pages], device, score_threshold, gt_path, progress)
    predictions = folder / "predictions.json"
    atomic_write_text(predictions, json.dumps(rows, separators=(",", ":")) + "\n")

    gt = load_coco_ground_truth(gt_path)
    if max_pages:
        gt = gt.subset(p.image_id for p in pages)
    dets = load_predictions(predictions, gt)
    result = evaluate_detections(gt, dets).to_dict()
    top = most_frequent_classes(pages, TOP_CLASSES)
    top_result = evaluate_detections(gt, dets, classes=top)
    metrics = {"run": str(run), "data": str(data), "split": split, "pages": len(pages),
               "ground_truth": str(gt_path), "predictions": str(predictions), **result,
               "top10_classes": [split_data.class_names[c] for c in top],
               "mAP_top10": top_result.mAP, "mAP50_top10": top_result.mAP50,
               "inference": timing, "score_threshold": score_threshold}
    atomic_write_text(out_file, json.dumps(metrics, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(folder / "metrics.md", metrics_markdown(metrics))
    if overlays:
        from deepscores.show import show_page

        for page in pages[:overlays]:
            show_page(data, page.name, folder / f"overlay-{page.name}.png", predictions=predictions, score_threshold=0.3)
    return metrics


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """The headline figures and the per-class AP table (classes by ground-truth count)."""
    lines = [f"# Detection: {metrics['run']} on {metrics['split']} ({metrics['pages']} pages)", "",
             "| mAP@[.5:.95] | mAP@.5 | mAP@.75 | AR | mAP@[.5:.95] top-10 | mAP@.5 top-10 | pages/s |",
             "|---|---|---|---|---|---|---|",
             f"| {_fmt(metrics['mAP'])} | {_fmt(metrics['mAP50'])} | {_fmt(metrics['mAP75'])} | {_fmt(metrics['AR'])} "
             f"| {_fmt(metrics['mAP_top10'])} | {_fmt(metrics['mAP50_top10'])} | {metrics['inference']['pages_per_s']:.3f} |",
             "", "AP by box area (px²): " + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics["AP_by_area"].items()), "",
             "| class | truths | detections | AP | AP@.5 | AR |", "|---|---|---|---|---|---|"]
    per_class = sorted(metrics["per_class"].items(), key=lambda kv: (-kv[1]["gt"], kv[0]))
    for name, row in per_class:
        lines.append(f"| {name} | {row['gt']} | {row['dets']} | {_fmt(row['AP'])} | {_fmt(row['AP50'])} | {_fmt(row['AR'])} |")
    return "\n".join(lines) + "\n"
