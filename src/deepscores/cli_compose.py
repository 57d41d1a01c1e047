"""The `deepscores compose` command: argument parsing and printing only; the work is in deepscores.compose."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console


def compose(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the scores (created when missing).")],
    count: Annotated[int, typer.Option(help="Scores to compose.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the run; score i is composed from (seed, i).")] = 0,
    layout: Annotated[str, typer.Option(help="solo, piano, satb, quartet, leadsheet or mixed (one per score).")] = "mixed",
    measures: Annotated[int, typer.Option(help="<measure> elements per score (a multi-measure rest is one).")] = 32,
    rate: Annotated[Optional[list[str]], typer.Option(
        "--rate", help="device=value, repeatable: a device's rate from 0 to 1 (see deepscores.compose.devices).",
    )] = None,
) -> None:
    """Compose seeded synthetic scores (MEI) that use every notational device at the rates asked."""
    # Imported here: cli.py imports this module to register the command, so a top-level import of
    # deepscores.cli would be circular.
    from deepscores.cli import _call
    from deepscores.compose import ComposeOptions, write_scores
    from deepscores.compose.devices import parse_rate

    rates = tuple(_call(parse_rate, text) for text in rate or ())
    options = ComposeOptions(layout=layout, measures=measures, rates=rates)
    paths = _call(write_scores, out, count, seed, options)
    Console().print(f"composed {len(paths)} scores into {out} (layout {layout}, {measures} measures, seed {seed})")
