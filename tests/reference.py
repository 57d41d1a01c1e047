"""Where the published DeepScoresV2 reference sample lives: ``shared/`` beside the project's checkout
(CI lays a copy there), else the workplace's own copy. It is data we compare against, never ship."""

from __future__ import annotations

from pathlib import Path

_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "deepscoresv2",
    Path("/work/shared/reference/deepscoresv2"),
)

REFERENCE = next((p for p in _CANDIDATES if (p / "deepscores_v2_sample.json").is_file()), _CANDIDATES[0])
SAMPLE = REFERENCE / "deepscores_v2_sample.json"
