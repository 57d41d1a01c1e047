"""Predicted boxes of one dataset page, read from a COCO results file, for `show`'s predictions panel."""

from __future__ import annotations

import json
from pathlib import Path

from deepscores.errors import DeepScoresError


def load_predictions(root: Path, page: str, predictions: str | Path, score_threshold: float
                     ) -> tuple[list[tuple[int, tuple[int, int, int, int], float]], int]:
    """Predicted boxes of ``page`` with score ≥ threshold, as (category_id, xyxy, score), and how many the file
    holds for the page. Image ids are those of the ``coco/<split>.json`` whose images include ``<page>.png``."""
    image_id = None
    for split in ("train", "val", "test"):
        path = root / "coco" / f"{split}.json"
        if not path.is_file():
            continue
        try:
            images = json.loads(path.read_text(encoding="utf-8"))["images"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DeepScoresError(f"{path}: cannot read COCO file ({type(exc).__name__})") from None
        image_id = next((im.get("id") for im in images if im.get("file_name") == f"{page}.png"), None)
        if image_id is not None:
            break
    if image_id is None:
        raise DeepScoresError(f"{root / 'coco'}: no coco/<split>.json lists {page}.png, so its predictions cannot be matched")
    path = Path(predictions)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(results, list):
            raise TypeError("not a list")
        mine = [r for r in results if r["image_id"] == image_id]
        boxes = []
        for r in mine:
            if float(r["score"]) >= score_threshold:
                x, y, w, h = (float(v) for v in r["bbox"])
                boxes.append((int(r["category_id"]), (round(x), round(y), round(x + w), round(y + h)), float(r["score"])))
    except FileNotFoundError:
        raise DeepScoresError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeepScoresError(f"{path}: not a COCO results file ([{{image_id, category_id, bbox, score}}]): "
                              f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    return boxes, len(mine)
