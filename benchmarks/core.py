"""Per-stage cost of the core (engrave → boxes → image → labels) on a fixed set of corpus pages.

    python benchmarks/core.py [--pages-per-score 2] [--repeat 3] [--backend skia]

Prints, for the DeepScores geometry (1894 px wide) and for true 400 dpi, the median milliseconds
per page of: Verovio layout (load), SVG output, SVG parse, box extraction (classify + outline
bounds), image render, label render (instance map + class mask), and the resulting pages/s on
one core. One process, one core: the figures are per core.
"""

from __future__ import annotations

import argparse
import statistics
import time

import music21
import numpy as np
import verovio

from deepscores.annotate import collect_instances, label_maps, mark_occlusion
from deepscores.corpus import load_score
from deepscores.engrave import EngraveOptions, engrave
from deepscores.page import Symbol
from deepscores.raster import get_backend
from deepscores.svg import parse_svg

WORKS = [
    "bach/bwv66.6", "bach/bwv269", "beethoven/opus18no1/movement1.mxl", "joplin/maple_leaf_rag.mxl",
    "mozart/k80/movement1.mxl", "schumann_clara/opus17/movement3.xml", "haydn/opus74no1/movement1.mxl",
    "monteverdi/madrigal.3.1.mxl", "essenFolksong/han1.abc", "palestrina/Agnus_01.krn",
]
STAGES = ["layout", "svg", "parse", "boxes", "image", "labels"]


def time_score(path, options: EngraveOptions, pages_per_score: int, backend) -> list[dict[str, float]]:
    score = load_score(path)
    engrave(score, options)  # warm the toolkit and caches for this font
    tk = verovio.toolkit()
    tk.setOptions({**options.verovio_options(), "inputFrom": score.input_from})
    t0 = time.perf_counter()
    tk.loadData(score.data)
    layout = time.perf_counter() - t0
    n = min(tk.getPageCount(), pages_per_score)
    rows = []
    width, height = options.pixel_size()
    for number in range(1, n + 1):
        row = {"layout": layout * 1000 / tk.getPageCount()}
        t = time.perf_counter()
        svg = tk.renderToSVG(number)
        row["svg"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        parsed = parse_svg(svg, width, height, options.font)
        row["parse"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        instances, _ = collect_instances(parsed)
        boxes = [inst.box(width, height) for inst in instances]
        row["boxes"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        backend.render_image(parsed)
        row["image"] = (time.perf_counter() - t) * 1000
        labelled = [(ink, i + 1) for i, inst in enumerate(instances) for ink in inst.inks]
        t = time.perf_counter()
        instance_map = backend.render_instances(parsed, labelled)
        class_ids = [0] + [1] * len(instances)
        class_mask, extents = label_maps(instance_map, np.array(boxes, np.int64).reshape(-1, 4), class_ids)
        mark_occlusion([Symbol(1, "x", b, i + 1, "") for i, b in enumerate(boxes)], instance_map, extents)
        row["labels"] = (time.perf_counter() - t) * 1000
        row["symbols"] = len(instances)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages-per-score", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", default="skia")
    args = ap.parse_args()
    backend = get_backend(args.backend)
    print(f"backend={args.backend}  verovio={verovio.toolkit(False).getVersion()}  scores={len(WORKS)}")
    header = "| geometry | pages | symbols/page | " + " | ".join(f"{s} ms" for s in STAGES) + " | total ms | pages/s/core |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for label, options in [("1894 px wide", EngraveOptions()), ("400 dpi", EngraveOptions(dpi=400))]:
        best: list[dict[str, float]] | None = None
        for _ in range(args.repeat):
            rows = [r for w in WORKS for r in time_score(music21.corpus.getWork(w), options, args.pages_per_score, backend)]
            if best is None or sum(sum(r[s] for s in STAGES) for r in rows) < sum(sum(r[s] for s in STAGES) for r in best):
                best = rows
        med = {s: statistics.median(r[s] for r in best) for s in STAGES}
        mean_total = statistics.mean(sum(r[s] for s in STAGES) for r in best)
        syms = statistics.mean(r["symbols"] for r in best)
        print(f"| {label} | {len(best)} | {syms:.0f} | " + " | ".join(f"{med[s]:.1f}" for s in STAGES)
              + f" | {mean_total:.1f} | {1000 / mean_total:.1f} |")


if __name__ == "__main__":
    main()
