"""Degradation presets: data files (``data/degrade/<name>.yaml`` or any YAML path) listing effects,
their parameter ranges and their probabilities; read and checked here.

```yaml
name: scan
description: a flatbed scan of a printed page
effects:
  - effect: paper          # a name from effects.EFFECTS
    p: 1.0                 # probability that the effect is applied to a page (default 1)
    params:                # a number (fixed) or [low, high] (drawn uniformly per page);
      brightness: [0.9, 1.0]   # parameters left out take the effect's default range
```

A bad file (unknown effect or key, a value outside the parameter's allowed range) raises
`PresetError` in one line naming the file and the key, e.g.
``scan.yaml: effects[2].params.sigma_px: 9.0 is outside the allowed range [0.0, 6.0]``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from deepscores.degrade.effects import EFFECTS
from deepscores.errors import OptionsError

#: The value of ``--degrade`` that turns degradation off.
NO_DEGRADE = "none"
_TOP_KEYS = ("name", "description", "effects")
_EFFECT_KEYS = ("effect", "p", "params")


class PresetError(OptionsError):
    """A preset that cannot be read or does not follow the schema (message: file, key, cause)."""

    def __init__(self, path: str, key: str, cause: str) -> None:
        self.path, self.key = path, key
        super().__init__(f"{path}: {key + ': ' if key else ''}{' '.join(str(cause).split())}")


@dataclass(frozen=True)
class EffectConfig:
    """One entry of a preset: the effect, its probability, and every parameter's (low, high) range."""

    effect: str
    p: float
    params: tuple[tuple[str, tuple[float, float]], ...]

    def to_json(self) -> dict:
        return {"effect": self.effect, "p": self.p, "params": {k: list(v) for k, v in self.params}}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    effects: tuple[EffectConfig, ...]
    source: str = ""  # built-in name or file path the preset came from

    @property
    def geometric(self) -> bool:
        return any(EFFECTS[e.effect].kind == "geometric" for e in self.effects)

    def to_json(self) -> dict:
        """The preset with every range resolved (defaults filled in): enough to redo any page."""
        return {"name": self.name, "description": self.description, "source": self.source,
                "effects": [e.to_json() for e in self.effects]}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps([e.to_json() for e in self.effects], sort_keys=True).encode()).hexdigest()[:16]


def builtin_presets() -> tuple[str, ...]:
    """Names of the presets shipped in ``data/degrade/``, sorted (plus ``none``)."""
    folder = resources.files("deepscores") / "data" / "degrade"
    return tuple(sorted(e.name[:-5] for e in folder.iterdir() if e.name.endswith(".yaml")))


def load_preset(name_or_path: str | Path) -> Preset | None:
    """A built-in preset by name, or a preset file by path; None for ``none``."""
    text = str(name_or_path)
    if text == NO_DEGRADE:
        return None
    if text in builtin_presets():
        resource = resources.files("deepscores") / "data" / "degrade" / f"{text}.yaml"
        return parse_preset(resource.read_text(encoding="utf-8"), f"{text}.yaml", source=text)
    path = Path(text)
    if not (path.suffix in (".yaml", ".yml", ".json") or path.exists()):
        raise PresetError(text, "", f"no such preset; built-in presets: {', '.join((NO_DEGRADE, *builtin_presets()))}, "
                                    "or give a path to a .yaml file")
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PresetError(text, "", f"cannot read: {exc.strerror or exc}") from None
    return parse_preset(content, text, source=str(path))


def parse_preset(text: str, where: str, source: str = "") -> Preset:
    """Read and check one preset document (YAML; JSON is YAML too)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PresetError(where, "", f"not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise PresetError(where, "", "expected a mapping with 'effects'")
    for key in data:
        if key not in _TOP_KEYS:
            raise PresetError(where, str(key), f"unknown key; allowed: {', '.join(_TOP_KEYS)}")
    effects = data.get("effects")
    if not isinstance(effects, list) or not effects:
        raise PresetError(where, "effects", "expected a non-empty list of effects")
    configs = tuple(_effect_config(entry, f"effects[{i}]", where) for i, entry in enumerate(effects))
    name = data.get("name", Path(where).stem)
    return Preset(str(name), str(data.get("description", "")), configs, source or where)


def _effect_config(entry: object, key: str, where: str) -> EffectConfig:
    if not isinstance(entry, dict):
        raise PresetError(where, key, "expected a mapping with 'effect', 'p', 'params'")
    for k in entry:
        if k not in _EFFECT_KEYS:
            raise PresetError(where, f"{key}.{k}", f"unknown key; allowed: {', '.join(_EFFECT_KEYS)}")
    name = entry.get("effect")
    if name not in EFFECTS:
        raise PresetError(where, f"{key}.effect", f"unknown effect {name!r}; known: {', '.join(sorted(EFFECTS))}")
    p = _number(entry.get("p", 1.0), where, f"{key}.p")
    if not 0.0 <= p <= 1.0:
        raise PresetError(where, f"{key}.p", f"{p} is outside the allowed range [0, 1]")
    effect = EFFECTS[name]
    given = entry.get("params") or {}
    if not isinstance(given, dict):
        raise PresetError(where, f"{key}.params", "expected a mapping of parameter: value or [low, high]")
    for param in given:
        if effect.spec(str(param)) is None:
            raise PresetError(where, f"{key}.params.{param}",
                              f"unknown parameter of {name}; known: {', '.join(s.name for s in effect.params)}")
    ranges = []
    for spec in effect.params:
        pkey = f"{key}.params.{spec.name}"
        value = given.get(spec.name, list(spec.default))
        if isinstance(value, list):
            if len(value) != 2:
                raise PresetError(where, pkey, f"expected a number or [low, high], got {value!r}")
            low, high = (_number(v, where, pkey) for v in value)
        else:
            low = high = _number(value, where, pkey)
        if low > high:
            raise PresetError(where, pkey, f"low {low} is above high {high}")
        for v in (low, high):
            if not spec.bounds[0] <= v <= spec.bounds[1]:
                raise PresetError(where, pkey, f"{v} is outside the allowed range [{spec.bounds[0]}, {spec.bounds[1]}]")
            if spec.integer and v != int(v):
                raise PresetError(where, pkey, f"{v} is not an integer")
        ranges.append((spec.name, (float(low), float(high))))
    return EffectConfig(name, p, tuple(ranges))


def _number(value: object, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PresetError(where, key, f"expected a finite number, got {value!r}")
    return float(value)
