"""Scale-out figures: pages/s on the local engine (1, 2 workers) and on a local Ray cluster (1, 2 CPUs)
on the same scores, Ray's overhead per page, storage per page, and what 300,000 pages would cost.

    python benchmarks/scale.py [--scores 12] [--pages-target 300000]

Generation time excludes the finishing step (COCO, YOLO, shards), as benchmarks/generate.py does;
Ray's cluster start is timed on its own. The extrapolation assumes throughput grows linearly with
cores (what the 1 → 2 core ratio here shows; it is not measured beyond 2 cores) and a shared
filesystem that keeps up (≈ storage per page × pages/s).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import fixed_scores  # noqa: E402  (the same score list as benchmarks/generate.py)

from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate  # noqa: E402

FOLDERS = {"image PNG": "images_png", "class-mask PNG": "pix_annotations_png", "instance PNG": "instance_png",
           "XML": "xml_annotations", "shards": "shards"}


def timed_run(sources: list[str], out: Path, engine: str, workers: int) -> dict:
    summary = run_generate(GenerateOptions(sources=tuple(sources), patches_per_class=0, shards_mb=1000),
                           RunSettings(out=out, workers=workers, progress=False, engine=engine))
    generate_s = summary.seconds - summary.finish_seconds
    return {"engine": engine, "cores": workers, "pages": summary.pages, "failed": len(summary.failures),
            "generate_s": generate_s, "pages_per_s": summary.pages / generate_s}


def storage(out: Path, pages: int) -> dict[str, float]:
    return {label: sum(p.stat().st_size for p in (out / folder).glob("*") if p.is_file()) / pages
            for label, folder in FOLDERS.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", type=int, default=12)
    ap.add_argument("--pages-target", type=int, default=300_000)
    args = ap.parse_args()
    sources = fixed_scores(args.scores)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for workers in (1, 2):
            rows.append(timed_run(sources, root / f"local{workers}", "local", workers))
        for cpus in (1, 2):
            t = time.perf_counter()
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            start_s = time.perf_counter() - t
            try:
                row = timed_run(sources, root / f"ray{cpus}", "ray", cpus)
            finally:
                ray.shutdown()
            rows.append({**row, "cluster_start_s": start_s})
        sizes = storage(root / "local1", rows[0]["pages"])

    print(f"scores={len(sources)} (every k-th MusicXML file of music21's corpus), 1894 px wide pages, "
          f"{rows[0]['pages']} pages per run")
    print("| engine | cores | pages | failed | generate s | pages/s | pages/s per core | cluster start s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        start = f"{r['cluster_start_s']:.1f}" if "cluster_start_s" in r else "-"
        print(f"| {r['engine']} | {r['cores']} | {r['pages']} | {r['failed']} | {r['generate_s']:.1f} | "
              f"{r['pages_per_s']:.2f} | {r['pages_per_s'] / r['cores']:.2f} | {start} |")
    for cores in (1, 2):
        local = next(r for r in rows if r["engine"] == "local" and r["cores"] == cores)
        on_ray = next(r for r in rows if r["engine"] == "ray" and r["cores"] == cores)
        overhead_ms = (on_ray["generate_s"] - local["generate_s"]) / local["pages"] * 1000 * cores
        print(f"Ray overhead, {cores} core(s): {overhead_ms:+.0f} ms per page per core "
              f"({on_ray['pages_per_s'] / local['pages_per_s']:.2f}x local throughput)")

    print()
    print("| storage per page | KB |")
    print("|---|---|")
    for label, size in sizes.items():
        print(f"| {label} | {size / 1e3:.0f} |")
    page_files = sum(v for k, v in sizes.items() if k != "shards")
    print(f"| page files (PNG ×3 + XML) | {page_files / 1e3:.0f} |")

    per_core = max(r["pages_per_s"] / r["cores"] for r in rows if r["engine"] == "ray")
    core_hours = args.pages_target / per_core / 3600
    print()
    print(f"{args.pages_target:,} pages at {per_core:.2f} pages/s per core (best Ray row): {core_hours:,.1f} core-hours")
    print("| cores | wall time h |")
    print("|---|---|")
    for cores in (8, 64, 256):
        print(f"| {cores} | {core_hours / cores:.2f} |")
    tb_files = page_files * args.pages_target / 1e12
    tb_shards = sizes["shards"] * args.pages_target / 1e12
    print(f"storage: page files {tb_files:.3f} TB, shards {tb_shards:.3f} TB, both {tb_files + tb_shards:.3f} TB "
          "(COCO/YOLO/patches not included)")


if __name__ == "__main__":
    main()
