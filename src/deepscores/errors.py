"""The one exception family of deepscores; every message is one line naming the file and the cause."""

from __future__ import annotations

from pathlib import Path


class DeepScoresError(Exception):
    """Base of every error deepscores raises on purpose."""


class ScoreError(DeepScoresError):
    """A score file cannot be read or engraved. The message names the file and the cause."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = " ".join(str(cause).split())  # keep it to one line
        super().__init__(f"{self.path}: {self.cause}")


class UnsupportedFormatError(ScoreError):
    """The file's extension is not a score format deepscores reads."""


class FontError(DeepScoresError):
    """An unknown music font was asked for."""


class OptionsError(DeepScoresError):
    """Options that make no sense together or are out of range."""
