"""The `deepscores` command: argument parsing and printing only; the work is in the library."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from deepscores.engrave import FONTS
from deepscores.errors import DeepScoresError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Music scores → DeepScores-style datasets.")
console = Console(stderr=True)


def _setup_logging(verbose: bool) -> None:
    handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], format="%(message)s")
    # Verovio's own warnings about the scores are many and rarely actionable; show them with -v.
    logging.getLogger("deepscores.verovio").setLevel(logging.INFO if verbose else logging.ERROR)


def _fail(exc: DeepScoresError) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1)


def _call(function, *args, **kwargs):
    """``function(*args, **kwargs)``; a DeepScoresError it raises ends the command with its one line."""
    try:
        return function(*args, **kwargs)
    except DeepScoresError as exc:
        _fail(exc)


def _parse_fonts(text: str) -> tuple[str, ...]:
    if text.strip().lower() == "all":
        return FONTS
    by_lower = {f.lower(): f for f in FONTS}
    fonts = []
    for name in (t.strip() for t in text.split(",") if t.strip()):
        if name.lower() not in by_lower:
            raise typer.BadParameter(f"unknown font {name!r}; choose from {', '.join(FONTS)} or 'all'")
        fonts.append(by_lower[name.lower()])
    return tuple(fonts)


def _parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--split expects three fractions like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3:
        raise typer.BadParameter(f"--split expects three fractions like 0.8,0.1,0.1, got {text!r}")
    return parts  # type: ignore[return-value]


@app.command()
def generate(
    sources: Annotated[Optional[list[str]], typer.Argument(help="Score files, folders (recursive) or globs. None: the embedded music21 corpus.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder.")] = Path("dataset"),
    pages: Annotated[Optional[int], typer.Option(help="Stop after N pages (scores chosen from the seed).")] = None,
    fonts: Annotated[str, typer.Option(help="'all' or a comma list of Leipzig,Bravura,Gootville,Leland,Petaluma.")] = "all",
    font_mode: Annotated[str, typer.Option(help="score: each score in one font drawn from the seed; every: each score in every font.")] = "score",
    dpi: Annotated[Optional[float], typer.Option(help="True resolution (e.g. 400); default: DeepScores' 1894 px wide pages.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for fonts, score order, splits and patch choice.")] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = os.cpu_count() or 1,
    timeout: Annotated[float, typer.Option(help="Seconds one score may take before it is recorded as a timeout.")] = 300.0,
    memory_limit_mb: Annotated[int, typer.Option(help="Address-space cap per worker (0: none).")] = 4096,
    patches_per_class: Annotated[int, typer.Option(help="Classification patches per class (0: none).")] = 3000,
    split: Annotated[str, typer.Option(help="train,val,test fractions; by score, never by page.")] = "0.8,0.1,0.1",
    corpus: Annotated[Optional[str], typer.Option(help="Narrow the default corpus (music21:bach), or 'synthetic': composed scores only.")] = None,
    synthetic: Annotated[int, typer.Option(help="Add K composed scores (deepscores compose) to the plan.")] = 0,
    min_per_class: Annotated[int, typer.Option(help="Balance: add composed scores aimed at the classes below N instances, within --pages.")] = 0,
    balance_share: Annotated[float, typer.Option(help="With --min-per-class: the share of --pages left to the composed scores.")] = 0.5,
    max_pages_per_score: Annotated[int, typer.Option(help="A sample (--pages) takes at most N pages of a score (per font); 0: no cap.")] = 10,
    max_collection_share: Annotated[float, typer.Option(help="A sample takes at most this share of its pages from one collection (corpus folder); 0: no cap.")] = 0.2,
    max_font_share: Annotated[float, typer.Option(help="A sample takes at most this share of its pages in one font; 0: no cap.")] = 0.3,
    classes: Annotated[str, typer.Option(help="Class vocabulary: deepscores (the paper's), deepscoresv2, deepscoresv2_strict.")] = "deepscores",
    format: Annotated[Optional[list[str]], typer.Option("--format", help="Exports, repeatable: deepscores, coco, yolo, obb-anns (needs --classes deepscoresv2). Default: deepscores coco yolo.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed or finished run in the same folder.")] = False,
    engine: Annotated[str, typer.Option(help="local (processes on this machine) or ray (a Ray cluster).")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address (auto or ray://host:port); default: start a local one.")] = None,
    shards: Annotated[Optional[float], typer.Option(help="Also write WebDataset tar shards of about SIZE MB.")] = None,
    degrade: Annotated[str, typer.Option(help="Scan/photo-like pages: none, light, scan, photo or a preset .yaml (docs/degrade.md).")] = "none",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build a DeepScores-style dataset: page images, class masks, instance maps, XML, COCO, YOLO, patches."""
    from deepscores.pipeline.run import GenerateOptions, RunSettings, run_generate

    _setup_logging(verbose)
    options = GenerateOptions(
        sources=tuple(sources or ()), corpus=corpus, pages=pages, fonts=_parse_fonts(fonts), font_mode=font_mode, dpi=dpi, seed=seed,
        patches_per_class=patches_per_class, split=_parse_split(split), shards_mb=shards, classes=classes,
        formats=tuple(dict.fromkeys(["deepscores", *format])) if format else GenerateOptions.formats, degrade=degrade,
        synthetic=synthetic, min_per_class=min_per_class, balance_share=balance_share,
        max_pages_per_score=max_pages_per_score, max_collection_share=max_collection_share, max_font_share=max_font_share,
    )
    settings = RunSettings(out=out, workers=workers, timeout_s=timeout or None,
                           memory_limit_mb=memory_limit_mb or None, resume=resume, engine=engine, address=address)
    columns = [TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TextColumn("errors: {task.fields[errors]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        total = pages
        bar = progress.add_task("pages" if pages else "scores", total=total, rate="", errors=0)
        state = {"errors": 0, "scores": 0}

        def on_progress(result, pages_done: int) -> None:
            state["scores"] += 1
            state["errors"] += result.status not in ("ok",)
            elapsed = progress.tasks[bar].elapsed or 1e-9
            progress.update(bar, completed=min(pages_done, total) if total else state["scores"],
                            rate=f"{pages_done / elapsed:.1f} pages/s", errors=state["errors"])

        try:
            summary = run_generate(options, settings, on_progress)
        except DeepScoresError as exc:
            progress.stop()
            _fail(exc)
    _print_summary(summary)
    raise typer.Exit(summary.exit_code)


def _print_summary(summary) -> None:
    out = Console()
    # Pages (planning and worker start included) and finishing apart: on a small run the finishing
    # step's patch files and the workers' start weigh as much as the pages themselves.
    pages_s = summary.seconds - summary.finish_seconds
    rate = summary.pages / pages_s if pages_s > 0 else 0.0
    out.print(f"[bold green]dataset:[/bold green] {summary.out.resolve()}")
    out.print(f"{summary.pages} pages, {summary.symbols} symbols from {summary.scores_ok} scores "
              f"in {summary.seconds:.1f} s (pages {pages_s:.1f} s, {rate:.2f} pages/s; finishing "
              f"{summary.finish_seconds:.1f} s); {len(summary.failures)} failed"
              + (f"; {summary.resumed_scores} scores reused from an earlier run" if summary.resumed_scores else ""))
    if summary.class_counts:
        table = Table(title="most frequent classes")
        table.add_column("class")
        table.add_column("symbols", justify="right")
        for name, count in summary.class_counts.most_common(10):
            table.add_row(name, str(count))
        out.print(table)
    if summary.deficits:
        short = ", ".join(f"{n} (-{c})" for n, c in sorted(summary.deficits.items(), key=lambda i: -i[1])[:12])
        out.print(f"[yellow]--min-per-class not reached within --pages[/yellow] for {len(summary.deficits)} "
                  f"classes, missing instances: {short}")
    if summary.unmapped:
        top = ", ".join(f"{n} ×{c}" for n, c in summary.unmapped.most_common(8))
        out.print(f"glyphs with no class (counted, not labelled): {top}")
    if summary.failures:
        table = Table(title="failed scores")
        table.add_column("status")
        table.add_column("reason")
        for result in summary.failures[:20]:
            table.add_row(result.status, result.error or "")
        out.print(table)
        if len(summary.failures) > 20:
            out.print(f"... and {len(summary.failures) - 20} more in manifest.jsonl")


@app.command()
def validate(directory: Annotated[Path, typer.Argument(help="A dataset folder made by generate.")]) -> None:
    """Check a dataset: files, sizes, boxes against pixels, COCO/YOLO against XML, splits by score."""
    from deepscores.validate import validate_dataset

    _setup_logging(False)
    defects = _call(validate_dataset, directory)
    out = Console()
    for defect in defects:
        out.print(f"{defect.file}: {defect.message}", markup=False, highlight=False)
    if defects:
        out.print(f"[red]{len(defects)} defects[/red]")
        raise typer.Exit(1)
    out.print("[green]dataset is valid[/green]")


@app.command()
def stats(
    directory: Annotated[Path, typer.Argument(help="A dataset folder made by generate.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Report folder (default: DIR/report).")] = None,
    compare_paper: Annotated[bool, typer.Option(help="Put the DeepScores paper's published figures beside ours.")] = False,
) -> None:
    """The paper's Table II and beyond: symbols per sheet and per class, skew, sizes, breakdowns, plots."""
    from deepscores.report import write_report
    from deepscores.stats import compute_stats

    _setup_logging(False)
    try:
        result = compute_stats(directory, progress=True)
        paths = write_report(result, out or directory / "report", compare_paper)
    except DeepScoresError as exc:
        _fail(exc)
    con = Console()
    table = Table(title="symbols (Table II)")
    for column in ("", "mean", "std", "max", "min", "median"):
        table.add_column(column, justify="right" if column else "left")
    for label, row in (("per sheet", result.symbols_per_sheet), ("per class", result.symbols_per_class)):
        table.add_row(label, *(_number(row.get(k)) for k in ("mean", "std", "max", "min", "median")))
    con.print(table)
    for defect in result.defects:
        con.print(f"defect: {defect}", markup=False, highlight=False)
    con.print(f"report: {paths[0].parent.resolve()} ({', '.join(p.name for p in paths)})")


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:,.0f}"


def _parse_crop(text: Optional[str]) -> Optional[tuple[int, int, int, int]]:
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--crop expects x,y,w,h in pixels, got {text!r}") from None
    return x, y, w, h


@app.command()
def show(
    directory: Annotated[Path, typer.Argument(help="A dataset folder made by generate.")],
    page: Annotated[str, typer.Argument(help="A page name, or its index among the sorted page names.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="PNG to write (default: <page>.png).")] = None,
    crop: Annotated[Optional[str], typer.Option(help="x,y,w,h of the snippet in page pixels (default: the densest part).")] = None,
    class_name: Annotated[Optional[str], typer.Option("--class", help="Class of the patch grid (default: the page's most frequent).")] = None,
    predictions: Annotated[Optional[Path], typer.Option(help="A COCO results JSON to draw beside the truth.")] = None,
    score_threshold: Annotated[float, typer.Option(help="Lowest score of a drawn prediction.")] = 0.5,
    clean: Annotated[Optional[Path], typer.Option(help="Degraded datasets: the clean dataset to show beside it (default: the one recorded, or the score engraved again).")] = None,
) -> None:
    """Figure-2 panels of one page: snippet, boxes by class, class mask, classification patches."""
    from deepscores.show import show_page

    _setup_logging(False)
    path = _call(show_page, directory, int(page) if page.isdigit() else page, out or Path(f"{page}.png"),
                 crop=_parse_crop(crop), class_name=class_name, predictions=predictions,
                 score_threshold=score_threshold, clean=clean)
    Console().print(f"wrote {path}")


@app.command("degrade")
def degrade_command(
    directory: Annotated[Path, typer.Argument(help="A dataset folder made by generate.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New dataset folder for the degraded pages.")],
    preset: Annotated[str, typer.Option(help="light, scan, photo or a preset .yaml file (docs/degrade.md).")] = "scan",
    workers: Annotated[int, typer.Option(help="Worker processes.")] = os.cpu_count() or 1,
) -> None:
    """Degrade an existing dataset's pages (scan/photo-like) into a new dataset with exact labels."""
    from deepscores.degrade.dataset import degrade_dataset

    _setup_logging(False)
    summary = _call(degrade_dataset, directory, out, preset, workers=workers)
    Console().print(f"[bold green]dataset:[/bold green] {summary.out.resolve()}: {summary.pages} pages, "
                    f"{summary.symbols} symbols (preset {preset})")


# The baselines' commands (train, evaluate, predict) live in cli_ml.py; importing it registers them here,
# after the dataset commands, so --help lists them in that order.
from deepscores import cli_ml as _cli_ml  # noqa: E402,F401
from deepscores.cli_compose import compose as _compose  # noqa: E402

app.command("compose")(_compose)


def main() -> None:
    app()


if __name__ == "__main__":
    # Run as `python -m deepscores.cli`, this file is __main__ and cli_ml registered its commands on the
    # imported deepscores.cli; start that app, which has them all.
    from deepscores.cli import main as _main

    _main()
