"""The statistics report: ``stats.json``, ``stats.md`` (the paper's Table II, skew, sizes, breakdowns,
and the comparison with the paper's figures) and the plots, from a computed `DatasetStats`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepscores.formats.atomic import atomic_write_text
from deepscores.stats import PAPER, DatasetStats

_TABLE_ROWS = ("mean", "std", "max", "min", "median")


def paper_comparison(stats: DatasetStats) -> list[dict[str, Any]]:
    """Rows (quantity, ours, paper, ours/paper) of our figures beside the paper's published ones."""
    rows = [("pages", stats.pages, PAPER["pages"]), ("symbols", stats.symbols, PAPER["symbols"]),
            ("classes", stats.classes_present, PAPER["classes"])]
    for table in ("symbols_per_sheet", "symbols_per_class"):
        rows += [(f"{table}.{k}", getattr(stats, table)[k], PAPER[table][k]) for k in _TABLE_ROWS]
    return [{"quantity": q, "ours": ours, "paper": paper, "ratio": None if ours is None else ours / paper}
            for q, ours, paper in rows]


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows] + [""]


def stats_markdown(stats: DatasetStats, compare_paper: bool = False, plots: list[str] = ()) -> str:
    """The report as markdown tables."""
    s = stats
    out = [f"# Dataset statistics: `{s.dataset}`", "",
           f"{_fmt(s.pages)} pages from {_fmt(s.scores)} scores, {_fmt(s.symbols)} symbols, {s.classes_present} of "
           f"the {s.classes_present + len(s.classes_absent) + len(s.classes_not_producible) - len(s.classes_unknown)} "
           f"`{s.catalogue}` classes present "
           f"({_fmt(s.hidden_symbols)} hidden, {_fmt(s.occluded_symbols)} occluded). Standard deviations are "
           f"population ones (ddof=0); per-class figures are over the classes present.", "",
           "## Symbols per sheet and per class (the paper's Table II)", ""]
    out += _table(["", "symbols per sheet", "symbols per class"],
                  [[k, s.symbols_per_sheet[k], s.symbols_per_class[k]] for k in _TABLE_ROWS])
    if compare_paper:
        out += ["## Compared with the paper", "", "DeepScores as published: 300,000 pages, ~80 million symbols, "
                "123 classes (Tuggener et al. 2018, Table II).", ""]
        out += _table(["quantity", "ours", "paper", "ours / paper"],
                      [[r["quantity"], r["ours"], r["paper"], r["ratio"]] for r in paper_comparison(s)])
    sk = s.skew
    out += ["## Skew", ""]
    out += _table(["quantity", "value"], [
        [f"share of the most common class ({sk['top_class']})", sk["top_class_share"]],
        [f"share of the top 10 % of classes ({sk['top_10pct_classes']} classes)", sk["top_10pct_share"]],
        *[[f"classes with fewer than {t} instances", n] for t, n in sk["classes_below"].items()],
        ["catalogue classes with no instance", len(s.classes_absent)]])
    a = s.object_area_px
    out += ["## Object sizes", "", f"Area is the {a['measure']}; median: {a['median_method']}. "
            f"{_fmt(a['zero_area_boxes'])} boxes have zero area.", ""]
    out += _table(["min", "median", "max"], [[a["min"], a["median"], a["max"]]])
    out += _table(["page size (px)", "pages"], [[k, v] for k, v in s.image_sizes.items()])
    out += ["## Classes", "", "Relative sizes are the median box width / height as a fraction of the page.", ""]
    out += _table(["class", "symbols", "share", "median width", "median height"],
                  [[n, c, c / s.symbols, s.relative_size_per_class.get(n, {}).get("median_width"),
                    s.relative_size_per_class.get(n, {}).get("median_height")] for n, c in s.class_counts.items()])
    out += [f"Absent ({len(s.classes_absent)}): " + (", ".join(s.classes_absent) or "none"), ""]
    out += [f"Not producible ({len(s.classes_not_producible)}; docs/ground-truth.md): "
            + ("; ".join(f"{n} ({why})" for n, why in s.classes_not_producible.items()) or "none"), ""]
    if s.classes_unknown:
        out += ["Not in the catalogue: " + ", ".join(s.classes_unknown), ""]
    for title, groups in (("font", s.by_font), ("split", s.by_split), ("source corpus", s.by_source)):
        out += [f"## By {title}", ""]
        out += _table([title, "pages", "symbols", "symbols per page"],
                      [[g, v["pages"], v["symbols"], v["symbols_per_page"]] for g, v in groups.items()])
    out += ["## Defects", ""]
    out += [f"- `{d['file']}`: {d['error']}" for d in s.defects] or ["none"]
    if plots:
        out += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(out) + "\n"


def write_report(stats: DatasetStats, out_dir: str | Path, compare_paper: bool = False) -> list[Path]:
    """Write ``stats.json``, ``stats.md`` and the PNG plots into ``out_dir``; the paths written."""
    from deepscores.plots import write_report_plots  # matplotlib only when a report is drawn

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_report_plots(stats, out)
    data = stats.to_dict()
    if compare_paper:
        data["paper_comparison"] = paper_comparison(stats)
    json_path, md_path = out / "stats.json", out / "stats.md"
    # Key order is the dataclass's, never sorted alphabetically, so the file reads top to bottom.
    atomic_write_text(json_path, json.dumps(data, indent=1) + "\n")
    atomic_write_text(md_path, stats_markdown(stats, compare_paper, [p.name for p in plots]))
    return [json_path, md_path, *plots]
