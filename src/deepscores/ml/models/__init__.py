"""The model registry: a name → a constructor, so that runs, configs and tests name models by string.

A new architecture registers itself with ``@register_model("name")`` and is then reachable through
``create_model(name, num_classes)``; the tests parametrise over ``list_models()``, so every entry is
built and run once without a test of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from deepscores.errors import DeepScoresError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_TASKS: dict[str, str] = {}


def register_model(name: str, task: str = "classify") -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make ``fn(num_classes, **kw) -> nn.Module`` reachable as ``create_model(name, ...)``;
    ``task`` (classify, detect, segment) says which interface the model has, for the tests."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            # Two modules claiming one name would make a saved config mean different models.
            raise DeepScoresError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        _TASKS[name] = task
        return fn

    return add


def list_models(task: str | None = None) -> tuple[str, ...]:
    """Registered model names (of one task, if given), sorted."""
    return tuple(sorted(n for n in _REGISTRY if task is None or _TASKS[n] == task))


def create_model(name: str, num_classes: int, **kw: object) -> nn.Module:
    """A freshly initialised model ``name`` with ``num_classes`` outputs (extra keywords go to its constructor)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise DeepScoresError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    return factory(num_classes, **kw)


# Imported last: the architectures register themselves through register_model above.
from deepscores.ml.models import resnet as _resnet  # noqa: E402,F401
from deepscores.ml.models import fcn_detector as _fcn_detector  # noqa: E402,F401
from deepscores.ml.models import faster_rcnn as _faster_rcnn  # noqa: E402,F401
from deepscores.ml.models import unet as _unet  # noqa: E402,F401
