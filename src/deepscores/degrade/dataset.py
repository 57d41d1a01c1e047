"""`deepscores degrade DIR --out DIR2 --preset P`: an existing dataset's pages through a preset, and
the clean page behind a degraded one (for `show`).

The pages are read back from their files (PNGs, XML), degraded with the seed of the dataset (so the
result equals ``generate --degrade P`` with the same options), written to DIR2, and the dataset is
finished as `generate` finishes one (splits, COCO, YOLO, patches from the degraded pages,
``dataset.json`` with the preset). Pages a photometric preset leaves alone keep their label files
byte for byte (copied).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
from pathlib import Path

from lxml import etree

from deepscores.classes import load_catalogue
from deepscores.errors import DeepScoresError, OptionsError
from deepscores.formats.atomic import atomic_write_text
from deepscores.formats.deepscores_xml import read_page_xml, write_page_xml
from deepscores.formats.pngio import read_png, write_png
from deepscores.page import Page, Symbol

_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def dataset_options(root: Path):
    """The `GenerateOptions` a dataset was made with (its ``dataset.json``)."""
    from deepscores.pipeline.run import GenerateOptions

    path = root / "dataset.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))["options"]
    except FileNotFoundError:
        raise DeepScoresError(f"{path}: no such file (not a finished deepscores dataset)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeepScoresError(f"{path}: cannot read the options ({type(exc).__name__})") from None
    known = {f.name for f in fields(GenerateOptions)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known}
    return GenerateOptions(**values)


def read_page(root: Path, name: str, classes: str) -> Page:
    """A page of a dataset read back from its files (everything but the full-extent masks)."""
    catalogue = load_catalogue(classes)
    xml = root / "xml_annotations" / f"{name}.xml"
    record = read_page_xml(xml)
    # The reader gives an empty <font/> the page's font; written back, the page must keep it empty.
    fonts = [el.text or "" for el in etree.parse(str(xml), _SAFE).iterfind("object/font")]
    symbols = [Symbol(class_id=catalogue.id_of(o.class_name), class_name=o.class_name, bbox_xyxy=o.bbox_xyxy,
                      instance_id=o.instance_id, font=font, glyph=o.glyph, hidden=o.hidden, occluded=o.occluded,
                      rel_position=o.rel_position, o_bbox=o.o_bbox, area_px=o.area_px, onset=o.onset)
               for o, font in zip(record.objects, fonts)]
    return Page(image=read_png(root / "images_png" / f"{name}.png"),
                class_mask=read_png(root / "pix_annotations_png" / f"{name}.png"),
                instance_map=read_png(root / "instance_png" / f"{name}.png"),
                symbols=symbols, font=record.font, score_id=record.score_id, page_number=record.page_number)


def _degrade_pages(src: Path, out: Path, names: list[str], preset, seed: int, classes: str) -> dict[str, list]:
    """Degrade and write some pages; page name → its (symbols, class counts) after degradation."""
    from deepscores.degrade.apply import degrade_page, page_seed
    from deepscores.formats.rle import RLE_FOLDER, write_rle

    summaries = {}
    for name in names:
        page = read_page(src, name, classes)
        degraded, record = degrade_page(page, preset, page_seed(seed, page.score_id, page.page_number))
        atomic_write_text(out / "degrade" / f"{name}.json", json.dumps(record.to_json(), sort_keys=True) + "\n")
        write_png(out / "images_png" / f"{name}.png", degraded.image)
        rle = src / RLE_FOLDER / f"{name}.json.gz"
        if rle.is_file():
            # A dataset made before the sidecar followed COCO (obb-anns alone) still has one.
            (out / RLE_FOLDER).mkdir(exist_ok=True)
        if degraded.instance_map is page.instance_map:  # photometric only: labels stay byte for byte
            for folder in ("pix_annotations_png", "instance_png"):
                shutil.copyfile(src / folder / f"{name}.png", out / folder / f"{name}.png")
            if rle.is_file():
                shutil.copyfile(rle, out / RLE_FOLDER / rle.name)
            shutil.copyfile(src / "xml_annotations" / f"{name}.xml", out / "xml_annotations" / f"{name}.xml")
        else:
            write_png(out / "pix_annotations_png" / f"{name}.png", degraded.class_mask)
            write_png(out / "instance_png" / f"{name}.png", degraded.instance_map)
            if rle.is_file():
                write_rle(out / RLE_FOLDER / rle.name, degraded.instance_masks, degraded.height, degraded.width)
            write_page_xml(out / "xml_annotations" / f"{name}.xml", degraded, name)
        summaries[name] = [len(degraded.symbols), dict(sorted(Counter(s.class_name for s in degraded.symbols).items()))]
    return summaries


def degrade_dataset(src: str | Path, out: str | Path, preset_name: str, workers: int = 1):
    """Degrade every page of the dataset ``src`` into a new dataset ``out``; returns its summary."""
    from deepscores.degrade import require
    from deepscores.pipeline.finalize import finalize_dataset
    from deepscores.pipeline.run import MANIFEST, GenerateSummary, read_manifest
    from deepscores.pipeline.tasks import DEGRADE_FILES, FULL_INSTANCE_FILES, PAGE_FILES

    require()
    src, out = Path(src), Path(out)
    options = replace(dataset_options(src), degrade=preset_name)
    preset = options.preset()
    if preset is None:
        raise OptionsError("deepscores degrade needs a preset other than 'none'")
    if out.resolve() == src.resolve():
        raise OptionsError(f"{out}: --out must be a new folder, not the source dataset")
    if (out / MANIFEST).exists():
        raise OptionsError(f"{out}: already holds a dataset; choose a new folder")
    results = read_manifest(src)
    sources = list(results)
    names = [p.name for r in results.values() if r.status == "ok" for p in r.pages]
    for folder in [*PAGE_FILES, *DEGRADE_FILES, *(FULL_INSTANCE_FILES if options.instance_rle else ())]:
        (out / folder).mkdir(parents=True, exist_ok=True)
    if workers > 1 and len(names) > 1:
        chunks = [names[i::workers * 4] for i in range(workers * 4)]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
            parts = pool.map(_degrade_pages, *zip(*[(src, out, c, preset, options.seed, options.classes) for c in chunks]))
            summaries = {k: v for part in parts for k, v in part.items()}
    else:
        summaries = _degrade_pages(src, out, names, preset, options.seed, options.classes)
    for result in results.values():
        result.pages = [replace(p, symbols=summaries[p.name][0], class_counts=summaries[p.name][1]) for p in result.pages]
    atomic_write_text(out / ".deepscores-options.json", json.dumps(json.loads(json.dumps(
        {f.name: getattr(options, f.name) for f in fields(options)})), sort_keys=True, indent=1) + "\n")
    summary = GenerateSummary(out)
    finalize_dataset(out, options, sources, sources, results, summary, workers=workers)
    # Where the clean pages are, for `deepscores show` (a path: the only non-reproducible byte).
    dataset = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    dataset["degrade"]["clean_dataset"] = str(src.resolve())
    atomic_write_text(out / "dataset.json", json.dumps(dataset, indent=1, sort_keys=True) + "\n")
    return summary


def clean_page(root: str | Path, name: str, clean: str | Path | None = None) -> Page:
    """The clean page behind a degraded one: from ``clean`` (a dataset folder), from the clean
    dataset `degrade_dataset` recorded, or engraved again from the score the manifest names."""
    root = Path(root)
    options = dataset_options(root)
    if clean is None:
        recorded = json.loads((root / "dataset.json").read_text(encoding="utf-8")).get("degrade", {}).get("clean_dataset")
        if recorded and (Path(recorded) / "xml_annotations" / f"{name}.xml").is_file():
            clean = recorded
    if clean is not None:
        return read_page(Path(clean), name, options.classes)
    from deepscores.annotate import annotate, wants_onsets
    from deepscores.classes_v2 import dynamics_by_letter
    from deepscores.synthetic import is_synthetic, load_source
    from deepscores.engrave import EngraveOptions, engrave
    from deepscores.pipeline.run import read_manifest

    result = next((r for r in read_manifest(root).values() if any(p.name == name for p in r.pages)), None)
    if result is None or not (is_synthetic(result.source) or Path(result.source).is_file()):
        raise DeepScoresError(f"{root}: cannot find the score of page {name} to engrave it again; pass --clean DIR")
    number = next(p.page_number for p in result.pages if p.name == name)
    # A score made in every font lists them all; the page name ends with this page's.
    font = next(f for f in result.font.split(",") if name.endswith(f"-{f.lower()}"))
    engraved = engrave(load_source(result.source), EngraveOptions(
        font=font, dpi=options.dpi, unit=options.unit,
        timing=wants_onsets(options.classes, options.full_instances),
        dynamics_by_letter=dynamics_by_letter(options.classes)))
    page = next(p for p in engraved if p.page_number == number)
    return annotate(page, result.score_id, load_catalogue(options.classes), full_instances=options.full_instances)
