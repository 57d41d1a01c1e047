"""How generation scales with cores: pages/s of the local engine with 1, 2, 4, … workers on the same scores.

    python benchmarks/cores.py [--scores 300] [--workers 1,2,4,8,16] [--sources DIR]

Each row is a fresh `deepscores generate` (the library call the CLI makes) of the same scores with
everything written (images, masks, instance maps, XML, COCO, YOLO, classification patches), as
benchmarks/generate.py does. Generation (the workers' pages) and finishing (COCO, YOLO, patches,
shared by the same number of processes) are timed apart. ``--sources DIR`` takes the score files of a
folder instead of every k-th MusicXML file of music21's corpus (for a machine without music21).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import fixed_scores, time_generate  # noqa: E402  (the same runs as benchmarks/generate.py)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", type=int, default=300)
    ap.add_argument("--workers", default="1,2,4,8,16", help="comma-separated worker counts")
    ap.add_argument("--sources", type=Path, help="a folder of score files to use instead of the corpus")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    if args.sources:
        sources = sorted(str(p) for p in args.sources.iterdir() if p.is_file())
    else:
        sources = fixed_scores(args.scores)
    print(f"{len(sources)} scores; {os.cpu_count()} CPUs: {cpu_name()}", flush=True)
    print("| workers | pages | generate s | pages/s | pages/s per worker | speed-up | finish s |", flush=True)
    print("|---|---|---|---|---|---|---|", flush=True)
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for workers in counts:
            r = time_generate(sources, workers, Path(tmp))
            base = base or r["pages_per_s"]
            print(f"| {workers} | {r['pages']} | {r['generate_s']:.1f} | {r['pages_per_s']:.2f} | "
                  f"{r['pages_per_s'] / workers:.2f} | {r['pages_per_s'] / base:.2f}x | {r['finish_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
