"""Loading experiment configs by name and applying `--config.<key>=<value>` overrides.

A config is an `ml_collections.ConfigDict` with four sections:

  model        family + constructor arguments of the model class (JSON-serialisable)
  data         name, image_size, batch_size, split (+ dataset-specific options)
  train        steps, log_every, checkpoint_every, num_samples, seed (+ max_to_keep: checkpoints
               kept, default 3)
  description  one line
"""

from __future__ import annotations

import ast
import difflib
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


#: Keys whose values are sizes / counts: an override must be a positive int.
_POSITIVE_INT_SUFFIXES = ("size", "channels", "batch_size", "steps", "every", "num_samples", "num_chains")


def _needs_positive_int(key: str, old) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return (
        isinstance(old, int)
        and not isinstance(old, bool)
        and old > 0
        and leaf.endswith(_POSITIVE_INT_SUFFIXES)
    )


_SYNONYMS = {"lr": ("lr", "learning_rate"), "learning_rate": ("lr", "learning_rate")}


def _unknown_key(key: str, valid: list[str]) -> EbmZooError:
    section, _, leaf = key.rpartition(".")
    words = _SYNONYMS.get(leaf, (leaf,))
    close = [
        v
        for v in valid
        if v.startswith(section)
        and leaf
        and any(w == v.rsplit(".", 1)[-1].split("_")[-1] or w in v.rsplit(".", 1)[-1] for w in words)
    ][:4]
    close = close or difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    hint = f" did you mean {', '.join('--config.' + c for c in close)}?" if close else ""
    return EbmZooError(f"Unknown config key {key!r};{hint} valid keys: {', '.join(valid)}.")


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: dict[str, str]) -> ml_collections.ConfigDict:
    """Applies {'model.step_size': '0.1', ...} to `cfg` in place.

    Unknown keys get close-match suggestions and the valid keys; an empty value, a value of the
    wrong type and a size / count / step key (image_size, batch_size, steps, log_every, ...) set
    to anything but a positive int are refused with one EbmZooError naming the key and the value.
    """
    valid = _flat_keys(cfg)
    for key, raw in overrides.items():
        if key not in valid:
            raise _unknown_key(key, valid)
        if isinstance(raw, str) and not raw.strip():
            raise EbmZooError(
                f"--config.{key} has no value; write --config.{key}=VALUE (e.g. --config.{key}={_current(cfg, key)!r})."
            )
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
        if _needs_positive_int(key, old) and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise EbmZooError(
                f"--config.{key}={raw!r}: {key} must be a positive int (it is {old!r} in this config)."
            )
        if isinstance(old, bool) != isinstance(value, bool) and old is not None:
            raise EbmZooError(
                f"--config.{key}={raw!r}: {key} is {type(old).__name__} ({old!r}); pass a {type(old).__name__}."
            )
        try:
            node[leaf] = value
        except (TypeError, ValueError) as e:
            raise EbmZooError(
                f"Config key {key!r} has type {type(old).__name__} (now {old!r}); cannot set it to {raw!r}: {e}"
            ) from e
    return cfg


def _current(cfg, key: str):
    node = cfg
    for p in key.split("."):
        node = node[p]
    return node


def stability_hint(cfg) -> str:
    """The flags that lower this config's learning rates / step sizes, e.g.
    '--config.model.energy_lr, --config.model.gen_lr, --config.model.step_size' for GGCN."""
    keys = [
        k
        for k in _flat_keys(cfg.model)
        if k.rsplit(".", 1)[-1] in ("lr", "learning_rate", "step_size")
        or k.rsplit(".", 1)[-1].endswith(("_lr", "_learning_rate", "_step_size"))
    ]
    if not keys:
        return "the model's learning-rate keys (see config.json)"
    return ", ".join(f"--config.model.{k}" for k in keys)


def to_json(cfg: ml_collections.ConfigDict) -> str:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True, default=str)


def from_json(text: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(json.loads(text))
