"""Music made to order: seeded MEI scores that look engraved by hand, with every notational device
DeepScores labels at a rate you choose (see `devices` for the devices, their classes and rates)."""

from deepscores.compose.devices import DEFAULT_RATES, DEVICES, ComposeOptions, rates_for_classes
from deepscores.compose.parts import LAYOUTS
from deepscores.compose.score import compose_mei
from deepscores.compose.write import write_scores

__all__ = ["DEFAULT_RATES", "DEVICES", "LAYOUTS", "ComposeOptions", "compose_mei", "rates_for_classes", "write_scores"]
