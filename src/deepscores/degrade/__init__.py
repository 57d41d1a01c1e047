"""Scan- and photo-like pages with exact ground truth (issue #9): presets as data, effects drawn per
page from the seed, geometric effects applied to image and labels together. See docs/degrade.md.

Needs OpenCV (the ``degrade`` extra: ``pip install 'deepscores[degrade]'``); `require()` says so cleanly.
"""

from __future__ import annotations

from deepscores.errors import OptionsError


def require() -> None:
    """Raise a one-line OptionsError when the degrade extra (OpenCV, PyYAML) is missing."""
    try:
        import cv2  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as exc:
        raise OptionsError(f"--degrade needs the degrade extra ({exc}): pip install 'deepscores[degrade]'") from None
