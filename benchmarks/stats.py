"""Speed and memory of `deepscores stats` on many pages.

    python benchmarks/stats.py [--pages 10000] [--symbols 250] [--keep DIR]

Synthesises ``--pages`` annotation XMLs (written by ``formats.deepscores_xml.page_xml`` from fake
pages: 100 distinct pages with 40–2×symbols random boxes and classes, copied under new names), then
times, each in a fresh process so that peak RSS is its own:

- ``read_page_xml``: the format module's reader over every file (what a naive stats would do);
- ``compute_stats``: exact medians (all symbols kept, 8 B each);
- ``compute_stats hist``: ``exact_limit=0``, the histogram path every dataset over 5M symbols takes;
- ``write_report``: stats.json, stats.md and the four plots.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepscores.classes import load_catalogue
from deepscores.formats.deepscores_xml import page_xml
from deepscores.page import Page, Symbol

W, H = 1894, 2679
FONTS = ("Bravura", "Leipzig", "Leland", "Gootville", "Petaluma")


def synthesise(root: Path, pages: int, symbols: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    names = load_catalogue().names
    # Real pages are skewed toward noteheads: draw classes from a Zipf-like law over the catalogue.
    weights = 1.0 / np.arange(1, len(names) + 1) ** 1.3
    weights /= weights.sum()
    blank = np.broadcast_to(np.uint8(255), (H, W))  # page_xml only needs the page size
    templates = []
    for t in range(min(100, pages)):
        n = int(rng.integers(40, 2 * symbols))
        x0, y0 = rng.integers(0, W - 80, n), rng.integers(0, H - 120, n)
        w, h = rng.integers(4, 80, n), rng.integers(4, 120, n)
        classes = rng.choice(len(names), n, p=weights)
        font = FONTS[t % len(FONTS)]
        syms = [Symbol(int(c) + 1, names[c], (int(a), int(b), int(a + c_w), int(b + c_h)), i + 1, font)
                for i, (c, a, b, c_w, c_h) in enumerate(zip(classes, x0, y0, w, h))]
        templates.append((font, page_xml(Page(blank, blank, blank, syms, font, f"{t:016x}", 1), "NAME")))
    folder = root / "xml_annotations"
    folder.mkdir(parents=True)
    total = 0
    for i in range(pages):
        font, data = templates[i % len(templates)]
        name = f"{i:016x}-p001-{font.lower()}"
        (folder / f"{name}.xml").write_bytes(data.replace(b"NAME", name.encode()))
        total += data.count(b"<object>")
    return total


def child(mode: str, root: Path) -> None:
    """One measurement in this process; prints seconds and peak RSS as JSON."""
    from deepscores.formats.deepscores_xml import read_page_xml
    from deepscores.report import write_report
    from deepscores.stats import compute_stats

    start = time.perf_counter()
    if mode == "read_page_xml":
        for path in sorted((root / "xml_annotations").glob("*.xml")):
            read_page_xml(path)
    elif mode == "compute_stats":
        compute_stats(root)
    elif mode == "compute_stats hist":
        compute_stats(root, exact_limit=0)
    elif mode == "write_report":
        stats = compute_stats(root)
        start = time.perf_counter()
        write_report(stats, root / "report", compare_paper=True)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--symbols", type=int, default=250, help="mean symbols per page (about)")
    parser.add_argument("--keep", type=Path, help="write the synthetic dataset here and keep it")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "ds"
        t = time.perf_counter()
        symbols = synthesise(root, args.pages, args.symbols)
        print(f"synthesised {args.pages:,} pages, {symbols:,} symbols in {time.perf_counter() - t:.1f} s\n")
        print(f"| {'step':<20} | {'pages':>7} | {'symbols':>10} | {'seconds':>7} | {'pages/s':>8} | {'peak RSS MB':>11} |")
        print(f"|{'-' * 22}|{'-' * 9}|{'-' * 12}|{'-' * 9}|{'-' * 10}|{'-' * 13}|")
        for mode in ("read_page_xml", "compute_stats", "compute_stats hist", "write_report"):
            out = subprocess.run([sys.executable, __file__, "--child", mode, str(root)], check=True,
                                 capture_output=True, text=True).stdout
            m = json.loads(out.strip().splitlines()[-1])
            print(f"| {mode:<20} | {args.pages:>7,} | {symbols:>10,} | {m['seconds']:>7.2f} | "
                  f"{args.pages / m['seconds']:>8,.0f} | {m['peak_mb']:>11.0f} |")


if __name__ == "__main__":
    main()
