"""Classification metrics in plain numpy: per-class and macro-average accuracy, confusion matrix, the
most confused pairs. Macro accuracy is DeepScoresV1's headline figure: the mean of per-class accuracies,
so a rare class weighs as much as ``noteheadBlack``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_labels(y: Sequence[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(y)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-D integer sequence, got {array.dtype} {array.shape}")
    return array.astype(np.int64, copy=False)


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     num_classes: int | None = None) -> np.ndarray:
    """``cm[t, p]`` = number of samples of true class t predicted as p."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels, y_pred {p.size}")
    n = num_classes if num_classes is not None else int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def per_class_accuracy(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                       num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy, support) per class; accuracy is NaN for a class with no sample in ``y_true``."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(support > 0, np.diag(cm) / support, np.nan)
    return accuracy, support


def macro_accuracy(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Mean of per-class accuracies over the classes present in ``y_true`` (absent classes are not zeros)."""
    accuracy, support = per_class_accuracy(y_true, y_pred)
    if not support.any():
        raise ValueError("macro_accuracy of an empty label set")
    return float(np.mean(accuracy[support > 0]))


def accuracy(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Fraction of samples predicted right (dominated by the frequent classes)."""
    t, p = _as_labels(y_true), _as_labels(y_pred)
    if t.size == 0 or t.shape != p.shape:
        raise ValueError(f"accuracy needs two equal non-empty label sets, got {t.size} and {p.size}")
    return float(np.mean(t == p))


def top_confusions(cm: np.ndarray, names: Sequence[str], k: int = 5) -> list[dict[str, object]]:
    """The ``k`` largest off-diagonal cells: ``[{true, predicted, count, fraction_of_true}]``, largest first."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    # Ties in count go to the lower (true, predicted) ids, so the list does not depend on sort internals.
    cells = sorted(zip(*np.nonzero(off)), key=lambda tp: (-off[tp], tp[0], tp[1]))[:k]
    pairs = []
    for t, p in cells:
        pairs.append({"true": names[t], "predicted": names[p], "count": int(off[t, p]),
                      "fraction_of_true": round(float(off[t, p] / cm[t].sum()), 4)})
    return pairs
