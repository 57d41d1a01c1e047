"""Composed scores as sources: ``synthetic:<seed>-<batch>-<index>[~device=rate,…]`` names one score
that compose/ writes on demand, so a plan can hold composed music beside score files.

The name holds everything the music depends on (the run's seed, the batch, the index and any
raised device rates), so the same name gives the same MEI text anywhere, and the manifest, resume
and the engines treat it like a path. The score's id is the hash of that text, as for a file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from deepscores.corpus import Score, load_score
from deepscores.errors import OptionsError, ScoreError

SYNTHETIC_PREFIX = "synthetic:"
#: Measures of a balancing round's composed score (the plan's own composed scores have compose's default).
BALANCING_MEASURES = 16
#: Folder of a dataset where the composed scores of its pages are kept (``<score id>.mei``).
COMPOSED_FOLDER = "composed"


def synthetic_sources(seed: int, batch: int, count: int, rates: tuple[tuple[str, float], ...] = ()) -> list[str]:
    """``count`` source names of one batch (0: the plan's own composed scores; 1, 2, …: balancing rounds)."""
    suffix = "~" + ",".join(f"{device}={rate:g}" for device, rate in rates) if rates else ""
    return [f"{SYNTHETIC_PREFIX}{seed}-{batch}-{index:05d}{suffix}" for index in range(count)]


def balancing_batch(source: str) -> int:
    """The balancing round a composed source belongs to (1, 2, …), 0 for any other source."""
    if not source.startswith(SYNTHETIC_PREFIX):
        return 0
    try:
        return int(source[len(SYNTHETIC_PREFIX):].split("~", 1)[0].split("-")[1])
    except (IndexError, ValueError):
        return 0


def is_synthetic(source: str) -> bool:
    return source.startswith(SYNTHETIC_PREFIX)


def _parse(source: str) -> tuple[int, tuple[tuple[str, float], ...]]:
    """The composer's seed and rates of a source name."""
    body = source[len(SYNTHETIC_PREFIX):]
    name, _, rate_text = body.partition("~")
    try:
        seed, batch, index = (int(part) for part in name.split("-"))
        rates = tuple((device, float(value)) for device, _, value in
                      (item.partition("=") for item in rate_text.split(",") if item))
    except ValueError:
        raise ScoreError(source, "not a composed-score name (synthetic:<seed>-<batch>-<index>[~device=rate,...])") from None
    # One integer per score from the three numbers, the same on every machine.
    digest = hashlib.sha256(f"compose\x1f{seed}\x1f{batch}\x1f{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big"), rates


def compose_source(source: str) -> Score:
    """The composed score a ``synthetic:`` source names."""
    from deepscores.compose import ComposeOptions, compose_mei

    seed, rates = _parse(source)
    # A balancing round's scores are short: they carry the devices it asks for, and a round sized
    # to the pages left should not overshoot them by a long score's pages.
    measures = ComposeOptions.measures if balancing_batch(source) == 0 else BALANCING_MEASURES
    try:
        text = compose_mei(seed, ComposeOptions(measures=measures, rates=rates))
    except OptionsError as exc:
        raise ScoreError(source, str(exc)) from None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Score(path=Path(source), data=text, input_from="mei", content_hash=digest)


def load_source(source: str) -> Score:
    """A plan entry as a Score: a score file, or a composed score."""
    return compose_source(source) if is_synthetic(source) else load_score(source)
