"""Dataset file formats: page PNGs, DeepScores XML, COCO, YOLO and classification patches (write and read)."""

from __future__ import annotations

from pathlib import Path

from deepscores.errors import DeepScoresError


class FormatError(DeepScoresError):
    """A dataset file cannot be read or does not follow its format. The message names the file and the cause."""

    def __init__(self, path: str | Path, cause: str) -> None:
        self.path = str(path)
        self.cause = " ".join(str(cause).split())  # keep it to one line
        super().__init__(f"{self.path}: {self.cause}")
