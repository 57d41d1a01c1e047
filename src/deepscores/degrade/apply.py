"""One page through a preset: parameters drawn from the page's seed, effects applied in the
preset's order, the geometric ones composed into a single warp (image and labels together).

Seeds: the page seed is ``stable_hash("degrade", global seed, score id, page number)`` (the score id
is the score's content hash), and effect ``i`` draws from ``SeedSequence(page seed, spawn_key=(i,))``,
so an effect's parameters do not depend on what other effects drew or whether they ran. No global RNG.

Order: effects run in the file's order; all geometric effects are composed into one transform that
runs where the first of them stands, so labels are resampled once. Photometric effects listed
after it (sensor noise, JPEG) act on the warped image, as a camera would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from deepscores.degrade.effects import EFFECTS, Step
from deepscores.degrade.presets import Preset
from deepscores.degrade.warp import compose_matrix, relabel, warp_arrays
from deepscores.page import Page
from deepscores.pipeline.tasks import stable_hash


def page_seed(seed: int, score_id: str, page_number: int) -> int:
    """The seed of one page's degradation: from the global seed, the score content and the page."""
    return stable_hash("degrade", seed, score_id, page_number)


@dataclass
class DrawnEffect:
    effect: str
    applied: bool
    params: dict[str, float]


@dataclass
class Degradation:
    """What was done to a page (written to ``degrade/<page>.json``): enough to redo it alone."""

    preset: str
    preset_digest: str
    seed: int
    effects: list[DrawnEffect]
    dropped: dict[str, int] = field(default_factory=dict)
    #: Forward homography (pixel-centre coordinates) when the page's warp was one, else None.
    matrix: list[list[float]] | None = None

    def to_json(self) -> dict:
        return {"preset": self.preset, "preset_digest": self.preset_digest, "seed": self.seed,
                "effects": [vars(e) for e in self.effects], "symbols_dropped": dict(sorted(self.dropped.items())),
                "matrix": self.matrix}


def draw(preset: Preset, seed: int) -> list[tuple[DrawnEffect, np.random.Generator]]:
    """Each effect's on/off and parameters, and the generator its own randomness continues from."""
    drawn = []
    for index, config in enumerate(preset.effects):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        applied = bool(rng.random() < config.p)
        spec = {s.name: s for s in EFFECTS[config.effect].params}
        params: dict[str, float] = {}
        for name, (low, high) in config.params:
            if spec[name].integer:
                params[name] = int(rng.integers(int(low), int(high) + 1))
            else:
                params[name] = float(low + (high - low) * rng.random())
        drawn.append((DrawnEffect(config.effect, applied, params), rng))
    return drawn


def degrade_page(page: Page, preset: Preset, seed: int) -> tuple[Page, Degradation]:
    """The degraded page and the record of what was drawn. ``seed``: the page seed (`page_seed`).

    With no geometric effect applied, the returned page shares the input's label maps and symbols
    (byte-identical files); otherwise they are recomputed from the warped instance map (warp.relabel).
    """
    drawn = draw(preset, seed)
    record = Degradation(preset.name, preset.digest(), seed, [d for d, _ in drawn])
    steps: list[Step] = []
    shape = page.image.shape
    for d, rng in drawn:
        if d.applied and EFFECTS[d.effect].kind == "geometric":
            steps.append(EFFECTS[d.effect].fn(shape, d.params, rng))
    image = page.image
    warped_at = next((i for i, (d, _) in enumerate(drawn) if d.applied and EFFECTS[d.effect].kind == "geometric"), None)
    labels = None
    for index, (d, rng) in enumerate(drawn):
        if index == warped_at:
            image, labels = warp_arrays(steps, image, page.instance_map)
        if d.applied and EFFECTS[d.effect].kind == "photometric":
            image = EFFECTS[d.effect].fn(image, d.params, rng)
    if labels is None:
        return replace(page, image=image), record
    matrix = compose_matrix(steps)
    record.matrix = None if matrix is None else [[float(v) for v in row] for row in matrix]
    degraded, dropped = relabel(page, image, labels)
    record.dropped = dict(dropped)
    return degraded, record


def dropped_total(records: list[Degradation]) -> Counter:
    total: Counter = Counter()
    for r in records:
        total.update(r.dropped)
    return total
