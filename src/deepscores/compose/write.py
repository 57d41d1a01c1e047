"""Composed scores to files: ``synthetic-<seed>-<index>.mei``, each written atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from deepscores.compose.devices import ComposeOptions
from deepscores.compose.score import compose_mei
from deepscores.errors import OptionsError
from deepscores.formats.atomic import atomic_write_text


def score_seed(seed: int, index: int) -> int:
    """The composing seed of the ``index``-th score of a run seeded ``seed``: distinct for every pair
    with index < 100000, so two runs with neighbouring seeds share no score."""
    return seed * 100_000 + index


def write_scores(out_dir: str | Path, count: int, seed: int = 0, options: ComposeOptions = ComposeOptions(),
                 on_progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Compose ``count`` scores into ``out_dir`` (created when missing) as
    ``synthetic-<seed>-<index:05d>.mei``; ``on_progress(done, count)`` after each. Returns the paths."""
    options.validate()
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 100_000:
        raise OptionsError(f"count must be an integer from 0 to 99999, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise OptionsError(f"seed must be an integer, got {seed!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OptionsError(f"{out}: not a folder")
    paths = []
    for index in range(count):
        path = out / f"synthetic-{seed}-{index:05d}.mei"
        atomic_write_text(path, compose_mei(score_seed(seed, index), options))
        paths.append(path)
        if on_progress is not None:
            on_progress(index + 1, count)
    return paths
