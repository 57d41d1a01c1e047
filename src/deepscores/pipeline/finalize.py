"""The end of a run: fix the page set, rewrite the manifest in plan order, write splits, the derived
formats the options ask for (COCO, YOLO, obb_anns), classification patches and ``dataset.json``. Everything here is a function of the manifest and
the page XMLs, so it gives the same bytes however the pages were produced."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import verovio

import deepscores
from deepscores.classes import load_catalogue
from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.coco import write_coco
from deepscores.formats.deepscores_xml import read_page_xml
from deepscores.formats.obb_anns import write_obb_anns
from deepscores.formats.rle import RLE_FOLDER, read_rle
from deepscores.formats.patches import select_patches, write_patches
from deepscores.formats.yolo import write_yolo
from deepscores.pipeline.quota import Caps, PageQuota, take_pages
from deepscores.pipeline.tasks import ScoreResult, page_totals, stable_hash
from deepscores.synthetic import COMPOSED_FOLDER, SYNTHETIC_PREFIX

if TYPE_CHECKING:
    from deepscores.pipeline.run import GenerateOptions, GenerateSummary

SPLITS = ("train", "val", "test")


def split_scores(score_ids: list[str], ratios: tuple[float, float, float], seed: int,
                 classes_of: dict[str, set[str]] | None = None) -> dict[str, str]:
    """Score id → split. By score, never by page: a seeded order cut at the ratios.

    With ``classes_of`` (score id → the classes on its pages), every class of the dataset also reaches
    training: for each class that no train score holds, rarest first, its first val or test score in the
    seeded order moves to train, while val and test each keep at least half their scores. A model
    cannot learn a class it never sees, and a test class without training data measures the split,
    not the model. Train grows by those scores (a handful in a thousand pages); classes held by one
    score only are then absent from val and test.
    """
    ordered = sorted(set(score_ids), key=lambda s: (stable_hash("split", seed, s), s))
    n = len(ordered)
    n_train = round(ratios[0] * n)
    n_val = min(n - n_train, round(ratios[1] * n))
    split = {s: ("train" if i < n_train else "val" if i < n_train + n_val else "test") for i, s in enumerate(ordered)}
    if classes_of and n_train > 0:
        holders: dict[str, list[str]] = {}
        for score in ordered:
            for name in classes_of.get(score, ()):
                holders.setdefault(name, []).append(score)
        # Val and test give up at most half their scores, so a small dataset keeps both.
        can_give = {"val": n_val // 2, "test": (n - n_train - n_val) // 2}
        for name in sorted(holders, key=lambda c: (len(holders[c]), c)):
            if any(split[s] == "train" for s in holders[name]):
                continue
            donor = next((s for s in holders[name] if can_give[split[s]] > 0), None)
            if donor is not None:
                can_give[split[donor]] -= 1
                split[donor] = "train"
    return split


def final_results(plan_accepted: list[str], results: dict[str, ScoreResult], caps: Caps) -> list[ScoreResult]:
    """The manifest's lines in plan order: duplicates marked, each score cut to the pages the sample
    keeps of it (quota.py: N pages in all, the diversity caps)."""
    final: list[ScoreResult] = []
    owner: dict[str, str] = {}
    quota = PageQuota(caps)
    for source in plan_accepted:
        result = results[source]
        if result.status == "ok" and result.score_id in owner:
            result = replace(result, status="duplicate", pages=[],
                             error=f"{source}: same content as {owner[result.score_id]}")
        elif result.status == "ok":
            owner[result.score_id] = source
            kept = take_pages(quota, result)
            if kept < len(result.pages):
                result = _keep_pages(result, kept)
        final.append(result)
    return final


def _keep_pages(result: ScoreResult, count: int) -> ScoreResult:
    """``result`` with its first ``count`` pages, its unmapped glyphs and duplicates counted on those
    pages alone (how many pages a worker made past them depends on when it started)."""
    kept = result.pages[:count]
    if any(p.unmapped is None or p.duplicates_removed is None for p in kept):
        return replace(result, pages=kept)  # a manifest from before the per-page counts: as recorded
    unmapped, duplicates = page_totals(kept)
    return replace(result, pages=kept, unmapped=unmapped, duplicates_removed=duplicates)


def _remove_stray_composed(out: Path, keep: set[str]) -> None:
    """Composed scores none of whose pages are in the dataset (a worker composed one the sample cut)."""
    for path in (out / COMPOSED_FOLDER).glob("*.mei"):
        if path.stem not in keep:
            path.unlink()


def _segmentation_source(out: Path) -> Callable[[str], list[dict[str, Any]] | None]:
    """Page name → its instance masks from ``instance_rle/`` (None where the page has none). Read
    when asked, page by page, so a split's masks are never all held twice."""
    return lambda name: read_rle(out / RLE_FOLDER / f"{name}.json.gz")


def _versions() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "deepscores": deepscores.__version__,
        "verovio": verovio.toolkit(False).getVersion(),  # the five fonts ship inside Verovio's wheel
        "skia-python": version("skia-python"),
        "pillow": version("pillow"),
        "numpy": version("numpy"),
        "music21": version("music21"),
    }


def finalize_dataset(out: Path, options: "GenerateOptions", plan: list[str], accepted: list[str],
                     results: dict[str, ScoreResult], summary: "GenerateSummary", workers: int = 1) -> None:
    from deepscores.pipeline.run import MANIFEST, remove_stray_pages

    final = final_results(accepted, results, options.caps(plan))
    page_names = [p.name for r in final if r.status == "ok" for p in r.pages]
    remove_stray_pages(out, set(page_names))
    _remove_stray_composed(out, {r.score_id for r in final if r.status == "ok" and r.pages})
    atomic_write_text(out / MANIFEST, "".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in final))

    catalogue = load_catalogue(options.classes)
    ok = [r for r in final if r.status == "ok" and r.pages]
    records = {r.score_id: [(p.name, read_page_xml(out / "xml_annotations" / f"{p.name}.xml")) for p in r.pages]
               for r in ok}
    classes_of = {score: {o.class_name for _, record in pages for o in record.objects} for score, pages in records.items()}
    split_of = split_scores([r.score_id for r in ok], options.split, options.seed, classes_of)
    (out / "splits").mkdir(exist_ok=True)
    by_split: dict[str, list] = {s: [] for s in SPLITS}
    for result in ok:
        by_split[split_of[result.score_id]].extend(records[result.score_id])
    segmentations = _segmentation_source(out)
    for split in SPLITS:
        atomic_write_text(out / "splits" / f"{split}.txt", "".join(f"{name}\n" for name, _ in by_split[split]))
        if "coco" in options.formats:
            write_coco(out / "coco" / f"{split}.json", by_split[split], catalogue, segmentations)
    if "yolo" in options.formats:
        write_yolo(out / "yolo", by_split, catalogue)
    if "obb-anns" in options.formats:
        write_obb_anns(out, by_split, catalogue, segmentations)
    # [scale] WebDataset shards, from the page files just listed, in the same split and page order.
    if options.shards_mb is not None:
        from deepscores.formats.shards import write_shards

        write_shards(out, by_split, catalogue, options.shards_mb)
    all_records = [pair for split in SPLITS for pair in by_split[split]]
    if options.patches_per_class > 0:
        selection = select_patches(all_records, options.patches_per_class, options.seed)
        write_patches(out, selection, catalogue, options.seed, options.patches_per_class, workers=workers,
                      records=dict(all_records))

    class_counts: Counter = Counter()
    unmapped: Counter = Counter()
    for result in ok:
        unmapped.update(result.unmapped)
        summary.duplicates_removed += result.duplicates_removed
        for page in result.pages:
            class_counts.update(page.class_counts)
    failures = [r for r in final if r.status not in ("ok", "duplicate")]
    summary.pages = len(page_names)
    summary.symbols = sum(class_counts.values())
    summary.scores_ok = len(ok)
    summary.failures = failures
    summary.class_counts = class_counts
    summary.unmapped = unmapped

    dataset = {
        "format": "deepscores",
        "options": json.loads(json.dumps(asdict(options))),
        "versions": _versions(),
        "page_geometry": {"dpi": options.dpi, "default_width_px": 1894},
        "fonts": ("every score in every font" if options.font_mode == "every" else
                  "per score, drawn from (seed, score content hash)") + "; each page name ends with its font",
        "box_convention": "integer pixel edges, end exclusive; XML stores x/width and y/height fractions",
        "classes": [{"id": i, "name": n} for i, n in catalogue.items()],
        "counts": {
            "pages": summary.pages,
            "symbols": summary.symbols,
            "scores_planned": len(plan),
            "scores_ok": len(ok),
            "scores_failed": len(failures),
            "scores_duplicate": sum(r.status == "duplicate" for r in final),
            "pages_per_split": {s: len(by_split[s]) for s in SPLITS},
            "per_class": dict(sorted(class_counts.items())),
            "unmapped_glyphs": dict(sorted(unmapped.items())),
            "duplicates_removed": summary.duplicates_removed,
        },
    }
    composed = sum(len(r.pages) for r in ok if r.source.startswith(SYNTHETIC_PREFIX))
    if composed or options.min_per_class:
        dataset["composed"] = {"pages": composed, "scores_folder": "composed/",
                               "min_per_class": options.min_per_class,
                               "classes_below_minimum": dict(sorted(summary.deficits.items()))}
    preset = options.preset()
    if preset is not None:
        # The preset itself, resolved: a page is redone from it and its degrade/<page>.json seed.
        dataset["degrade"] = {**preset.to_json(), "digest": preset.digest(),
                              "symbols_dropped": _dropped(out, page_names)}
    atomic_write_text(out / "dataset.json", json.dumps(dataset, indent=1, sort_keys=True) + "\n")


def _dropped(out: Path, page_names: list[str]) -> dict[str, int]:
    """Symbols the degradation's warps removed, by reason, over the dataset's pages."""
    total: Counter = Counter()
    for name in page_names:
        path = out / "degrade" / f"{name}.json"
        if path.is_file():
            total.update(json.loads(path.read_text(encoding="utf-8")).get("symbols_dropped", {}))
    return dict(sorted(total.items()))
