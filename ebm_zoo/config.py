"""Loading experiment configs by name and applying `--config.<key>=<value>` overrides.

A config is an `ml_collections.ConfigDict` with four sections:

  model        family + constructor arguments of the model class (JSON-serialisable)
  data         name, image_size, batch_size, split (+ dataset-specific options)
  train        steps, log_every, checkpoint_every, num_samples, seed
  description  one line
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil

import ml_collections

from ebm_zoo.utils.checks import EbmZooError


def _configs_package():
    return importlib.import_module("ebm_zoo.configs")


def list_configs() -> list[str]:
    """Names of every config module."""
    pkg = _configs_package()
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def resolve_name(name: str) -> str:
    """Maps a `--model` alias (e.g. 'multigrid') or a config module name to a module name."""
    aliases = getattr(_configs_package(), "ALIASES", {})
    if name in aliases:
        return aliases[name]
    if name in list_configs():
        return name
    valid = sorted(set(aliases) | set(list_configs()))
    raise EbmZooError(f"Unknown model/config {name!r}; valid names: {', '.join(valid)}.")


def get_config(name: str) -> ml_collections.ConfigDict:
    """Returns the config of a `--model` alias or config module name."""
    module = importlib.import_module(f"ebm_zoo.configs.{resolve_name(name)}")
    cfg = module.get_config()
    cfg.config_name = resolve_name(name)
    return cfg


def _flat_keys(cfg, prefix="") -> list[str]:
    keys = []
    for k, v in cfg.items():
        if isinstance(v, ml_collections.ConfigDict):
            keys += _flat_keys(v, f"{prefix}{k}.")
        else:
            keys.append(f"{prefix}{k}")
    return keys


def parse_value(text: str):
    """Parses an override value: Python literal if possible ('3', '1e-4', '[1,2]', 'True'), else str."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        return text


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: dict[str, str]) -> ml_collections.ConfigDict:
    """Applies {'model.step_size': '0.1', ...} to `cfg` in place; unknown keys list valid ones."""
    valid = _flat_keys(cfg)
    for key, raw in overrides.items():
        if key not in valid:
            raise EbmZooError(f"Unknown config key {key!r}; valid keys: {', '.join(valid)}.")
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        value = parse_value(raw) if isinstance(raw, str) else raw
        old = node[leaf]
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(old, (list, tuple)) and isinstance(value, (list, tuple)):
            value = type(old)(value)
        try:
            node[leaf] = value
        except (TypeError, ValueError) as e:
            raise EbmZooError(
                f"Config key {key!r} has type {type(old).__name__} (now {old!r}); cannot set it to {raw!r}: {e}"
            ) from e
    return cfg


def to_json(cfg: ml_collections.ConfigDict) -> str:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True, default=str)


def from_json(text: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(json.loads(text))
