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


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make ``fn(num_classes, **kw) -> nn.Module`` reachable as ``create_model(name, ...)``."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            # Two modules claiming one name would make a saved config mean different models.
            raise DeepScoresError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return add


def list_models() -> tuple[str, ...]:
    """Registered model names, sorted."""
    return tuple(sorted(_REGISTRY))


def create_model(name: str, num_classes: int, **kw: object) -> nn.Module:
    """A freshly initialised model ``name`` with ``num_classes`` outputs (extra keywords go to its constructor)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise DeepScoresError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    return factory(num_classes, **kw)


# Imported last: the architectures register themselves through register_model above.
from deepscores.ml.models import resnet as _resnet  # noqa: E402,F401
from deepscores.ml.models import unet as _unet  # noqa: E402,F401
