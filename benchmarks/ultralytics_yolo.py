"""The YOLO export read by ultralytics itself: per split, its images and boxes against the COCO files.

    python benchmarks/ultralytics_yolo.py DATASET [--train-epochs 1]

Needs ``ultralytics`` (AGPL-3.0, so never a dependency of deepscores; install it beside it to run
this). Ultralytics resolves ``yolo/data.yaml`` (`check_det_dataset`), scans every split's labels
(`YOLODataset`), and the table compares what it read with ``coco/<split>.json``: images, boxes, and
every box of every page in pixels (class id, x, y, w, h). ``--train-epochs N`` then trains a
YOLOv8n from its config (no weights are downloaded) on CPU for N epochs, to show the files train.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def compare(dataset: Path) -> list[tuple[str, int, int, int, int, int]]:
    from ultralytics.data import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(dataset / "yolo" / "data.yaml"))
    rows = []
    for split in ("train", "val", "test"):
        coco = json.loads((dataset / "coco" / f"{split}.json").read_text())
        by_file = {Path(image["file_name"]).name: image["id"] for image in coco["images"]}
        truth: dict[int, list] = {image_id: [] for image_id in by_file.values()}
        for ann in coco["annotations"]:
            truth[ann["image_id"]].append((ann["category_id"], *ann["bbox"]))
        labels = YOLODataset(img_path=data[split], data=data, task="detect", imgsz=640, augment=False).labels
        pages_equal = 0
        for label in labels:
            height, width = label["shape"]
            read = sorted((int(c) + 1, round((x - w / 2) * width), round((y - h / 2) * height), round(w * width),
                           round(h * height)) for c, (x, y, w, h) in zip(label["cls"].ravel(), label["bboxes"]))
            pages_equal += read == sorted(truth[by_file[Path(label["im_file"]).name]])
        rows.append((split, len(labels), len(coco["images"]), sum(len(l["cls"]) for l in labels),
                     len(coco["annotations"]), pages_equal))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--train-epochs", type=int, default=0)
    args = parser.parse_args()
    import ultralytics

    rows = compare(args.dataset)
    print(f"ultralytics {ultralytics.__version__} reading {args.dataset / 'yolo' / 'data.yaml'}")
    print("| split | images (ultralytics) | images (COCO) | boxes (ultralytics) | boxes (COCO) | pages with equal boxes |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")
    if args.train_epochs:
        from ultralytics import YOLO

        result = YOLO("yolov8n.yaml").train(
            data=str(args.dataset / "yolo" / "data.yaml"), epochs=args.train_epochs, imgsz=640, batch=4, device="cpu",
            workers=0, amp=False, plots=False, project=str(args.dataset / "ultralytics_runs"), name="yolov8n",
            exist_ok=True, verbose=False)
        print(f"trained {args.train_epochs} epoch(s): val mAP@.5 {result.box.map50:.3f}")


if __name__ == "__main__":
    main()
