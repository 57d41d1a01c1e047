"""The `deepscores train | evaluate | predict` commands: argument parsing and printing only; the work is in
deepscores.ml and deepscores.evaluation. Imported by cli.py, whose `app` they join."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from deepscores.cli import _call, _fail, _setup_logging, app
from deepscores.errors import DeepScoresError

evaluate_app = typer.Typer(no_args_is_help=True, help="Score a model or a predictions file with the field's metrics.")
app.add_typer(evaluate_app, name="evaluate")


def _ml_function(module: str, name: str):
    """A function of deepscores.ml, or a clean error when the ml extra (torch) is not installed."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        _fail(DeepScoresError(f"this command needs the ml extra ({exc}): pip install 'deepscores[ml]'"))


train_app = typer.Typer(no_args_is_help=True, help="Train the baselines (needs the ml extra: torch).")
app.add_typer(train_app, name="train")


@train_app.command("classify")
def train_classify_command(
    data: Annotated[Path, typer.Argument(help="A dataset folder with classification_data/ and splits/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoints, config.json, history).")] = Path("runs/classify"),
    preset: Annotated[str, typer.Option(help="small (CPU, minutes) or paper (25 conv layers, ~8M parameters).")] = "small",
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (default: the preset's).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size (default: the preset's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
    holdout_font: Annotated[Optional[str], typer.Option(help="Train on the other fonts, test on this one.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop training after this many minutes.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
) -> None:
    """Train the residual-CNN symbol classifier on 220×120 patches (Adam, lr 1e-3)."""
    _setup_logging(False)
    run = _call(_ml_function("deepscores.ml.train_classify", "train_classify"), data, out, preset=preset,
                epochs=epochs, batch_size=batch_size, device=device, seed=seed, holdout_font=holdout_font,
                resume=resume, progress=True, max_minutes=max_minutes)
    Console().print(f"run: {run}")


@evaluate_app.command("classify")
def evaluate_classify_command(
    run: Annotated[Path, typer.Argument(help="A run folder made by train classify.")],
    data: Annotated[Path, typer.Argument(help="The dataset folder.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    holdout_font: Annotated[Optional[str], typer.Option(help="Score the font hold-out test set.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="metrics.json (default: RUN/eval-SPLIT/metrics.json).")] = None,
) -> None:
    """Macro-average and overall accuracy, per-class table and confusion matrix on a split."""
    _setup_logging(False)
    metrics = _call(_ml_function("deepscores.ml.evaluate_classify", "evaluate_classify"), run, data, split=split,
                    out=out, holdout_font=holdout_font, device=device)
    Console().print(f"macro accuracy {metrics['macro_accuracy']:.4f}  accuracy {metrics['accuracy']:.4f}")


@evaluate_app.command("detect")
def evaluate_detect_command(
    paths: Annotated[list[Path], typer.Argument(help="RUN_DIR DATA (score a trained detector on DATA's split), or DATA with --predictions (a dataset folder, whose coco/<split>.json is used, or a ground-truth JSON).")],
    predictions: Annotated[Optional[Path], typer.Option(help="COCO results JSON: [{image_id, category_id, bbox, score}] (any model's).")] = None,
    split: Annotated[str, typer.Option(help="Split of the dataset to score against.")] = "test",
    boxes: Annotated[str, typer.Option(help="aligned or oriented (o_bbox) boxes (predictions files only).")] = "aligned",
    protocol: Annotated[str, typer.Option(help="coco (true IoU) or obb-anns (the DeepScoresV2 toolkit's computation; predictions files only).")] = "coco",
    max_dets: Annotated[Optional[int], typer.Option(help="Detections kept per image and class (default: all; COCO's 100 is far too few for a page).")] = None,
    max_pages: Annotated[Optional[int], typer.Option(help="Score only the split's first N pages (RUN_DIR mode).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (RUN_DIR mode).")] = "auto",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="metrics.json to write (default: metrics.json, or RUN/eval-SPLIT/metrics.json).")] = None,
) -> None:
    """mAP@[.5:.95], mAP@.5, AR and per-class AP: of a trained run (RUN_DIR DATA) or of a predictions file (DATA --predictions)."""
    _setup_logging(False)
    con = Console()
    try:
        if predictions is not None:
            if len(paths) != 1:
                raise DeepScoresError("with --predictions give one DATA argument (a dataset folder or ground-truth JSON)")
            from deepscores.evaluation import evaluate_detect

            out = out or Path("metrics.json")
            metrics = evaluate_detect(paths[0], predictions, split=split, boxes=boxes, protocol=protocol, out=out,
                                      max_dets=max_dets)
        else:
            if len(paths) != 2:
                raise DeepScoresError("give RUN_DIR DATA to score a trained detector, or DATA --predictions FILE")
            evaluate_detect_run = _ml_function("deepscores.ml.predict_detect", "evaluate_detect_run")
            metrics = evaluate_detect_run(paths[0], paths[1], split=split, out=out, device=device, max_pages=max_pages)
            out = out or paths[0] / f"eval-{split}" / "metrics.json"
            con.print(f"top-10 classes: mAP {metrics['mAP_top10']:.4f}  mAP50 {metrics['mAP50_top10']:.4f}")
    except DeepScoresError as exc:
        _fail(exc)
    con.print(f"{metrics['protocol']} protocol, {metrics['boxes']} boxes: mAP {metrics['mAP']:.4f}  "
              f"mAP50 {metrics['mAP50']:.4f}  mAP75 {metrics['mAP75']:.4f}  AR {metrics['AR']:.4f}")
    con.print(f"wrote {out}")


@train_app.command("detect")
def train_detect_command(
    data: Annotated[Path, typer.Argument(help="A dataset folder with coco/{train,val}.json and images_png/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoints, config.json, history).")] = Path("runs/detect"),
    model: Annotated[str, typer.Option(help="fcn (centre-heatmap detector for tiny objects) or faster-rcnn (torchvision).")] = "fcn",
    preset: Annotated[str, typer.Option(help="cpu (2 cores, under an hour) or gpu (larger model, crops and batches).")] = "cpu",
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (default: the preset's).")] = None,
    steps_per_epoch: Annotated[Optional[int], typer.Option(help="Batches per epoch (default: the preset's).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Crops per batch (default: the preset's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
    weights: Annotated[Optional[Path], typer.Option(help="Start from a local checkpoint (e.g. torchvision ResNet weights); nothing is downloaded.")] = None,
    val_pages: Annotated[int, typer.Option(help="Val pages scored (mAP@.5) after each epoch.")] = 4,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop training after this many minutes.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
) -> None:
    """Train a symbol detector on page crops; it predicts whole pages by overlapping tiles."""
    _setup_logging(False)
    run = _call(_ml_function("deepscores.ml.train_detect", "train_detect"), data, out, detector=model, preset=preset,
                epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size, device=device, seed=seed,
                resume=resume, progress=True, max_minutes=max_minutes, val_pages=val_pages, weights=weights)
    Console().print(f"run: {run}")


@train_app.command("segment")
def train_segment_command(
    data: Annotated[Path, typer.Argument(help="A dataset folder with images_png/, pix_annotations_png/ and splits/.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoints, config.json, history).")] = Path("runs/segment"),
    preset: Annotated[str, typer.Option(help="cpu (2 cores, under an hour) or gpu (wider U-Net, larger batches).")] = "cpu",
    epochs: Annotated[Optional[int], typer.Option(help="Epochs (default: the preset's).")] = None,
    steps_per_epoch: Annotated[Optional[int], typer.Option(help="Batches per epoch (default: the preset's).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Crops per batch (default: the preset's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop training after this many minutes.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
) -> None:
    """Train the U-Net that predicts the class mask (class per pixel) on page crops."""
    _setup_logging(False)
    run = _call(_ml_function("deepscores.ml.train_segment", "train_segment"), data, out, preset=preset, epochs=epochs,
                steps_per_epoch=steps_per_epoch, batch_size=batch_size, device=device, seed=seed, resume=resume,
                progress=True, max_minutes=max_minutes)
    Console().print(f"run: {run}")


@evaluate_app.command("segment")
def evaluate_segment_command(
    run: Annotated[Path, typer.Argument(help="A run folder made by train segment.")],
    data: Annotated[Path, typer.Argument(help="The dataset folder.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    max_pages: Annotated[Optional[int], typer.Option(help="Score only the split's first N pages.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="metrics.json (default: RUN/eval-SPLIT/metrics.json).")] = None,
) -> None:
    """Per-class IoU, mean IoU (all classes and the 10 most frequent), pixel accuracy, overlays."""
    _setup_logging(False)
    metrics = _call(_ml_function("deepscores.evaluation.segment", "evaluate_segment"), run, data, split=split,
                    out=out, device=device, max_pages=max_pages)
    Console().print(f"mIoU {metrics['mIoU']:.4f}  mIoU top-10 {metrics['mIoU_top10']:.4f}  "
                    f"pixel accuracy {metrics['pixel_accuracy']:.4f}")


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="A run folder made by train detect or train segment.")],
    images: Annotated[list[Path], typer.Argument(help="Page images (8-bit greyscale PNG).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Detection: COCO results JSON. Segmentation: a folder of class-mask PNGs.")] = Path("preds.json"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    score_threshold: Annotated[float, typer.Option(help="Lowest detection score kept (detection runs).")] = 0.05,
    ground_truth: Annotated[Optional[Path], typer.Option(help="COCO file whose image ids the results use (default: the dataset's, found beside images_png/).")] = None,
) -> None:
    """Predict whole pages with a trained model: boxes (COCO results format) or class masks."""
    _setup_logging(False)
    try:
        task = _run_task(run)
        if task == "detect":
            predict_detect = _ml_function("deepscores.ml.predict_detect", "predict_detect")
            written = predict_detect(run, images, out, device=device, score_threshold=score_threshold,
                                     ground_truth=ground_truth)
        else:
            predict_segment = _ml_function("deepscores.evaluation.segment", "predict_segment")
            masks = predict_segment(run, images, out, device=device)
            written = f"{len(masks)} masks in {out}"
    except DeepScoresError as exc:
        _fail(exc)
    Console().print(f"wrote {written}")


def _run_task(run: Path) -> str:
    """'detect' or 'segment', from a run folder's config.json."""
    import json

    path = run / "config.json"
    try:
        task = json.loads(path.read_text(encoding="utf-8")).get("task")
    except (OSError, ValueError, AttributeError) as exc:
        raise DeepScoresError(f"{path}: cannot read the run's config ({type(exc).__name__}); is {run} a run folder?") from None
    if task not in ("detect", "segment"):
        raise DeepScoresError(f"{path}: not a detection or segmentation run (task {task!r})")
    return task
