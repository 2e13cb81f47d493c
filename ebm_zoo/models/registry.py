"""The family registry: every sub-folder of ebm_zoo/models/ is a family that registers itself.

A family folder (keras-hub style, e.g. ebm_zoo/models/descriptor/) holds

    <family>_model.py     the EnergyModel subclass (and anything only this family uses)
    <family>_presets.py   PRESETS: {preset name: {description, config, dataset, image_size,
                          weights, sha256}} — data only
    __init__.py           re-exports the model and makes the one registration call:
                          register_family(Descriptor, PRESETS, aliases={"descriptor": "descriptor_texture"})

`families()` imports every sub-package of ebm_zoo.models once, so nothing central is edited to
add a family. `contract_gaps(cls)` lists what a family class lacks of the EnergyModel contract
(docs/CONVENTIONS.md, "Adding a family"); tests/test_export.py fails on any gap.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from typing import NamedTuple

from ebm_zoo.utils.checks import EbmZooError

#: Keys of one preset entry in a family's PRESETS (weights and sha256 may be omitted).
PRESET_KEYS = ("description", "config", "dataset", "image_size", "weights", "sha256")


class Family(NamedTuple):
    """A registered family: its name, model class, public module (the folder), presets and
    `--model` aliases (alias -> config module in configs/)."""

    name: str
    cls: type
    module: str
    presets: dict
    aliases: dict


_REGISTRY: dict[str, Family] = {}
_DISCOVERED = False


def register_family(cls: type, presets: dict, aliases: dict | None = None) -> Family:
    """Registers a family folder's model class; called once in the folder's `__init__.py`.

    The class's `__module__` becomes the folder package (e.g. "ebm_zoo.models.descriptor"), the
    public import path that saved configs name, wherever in the folder the class is defined.
    """
    name = getattr(cls, "family", "")
    if not name:
        raise EbmZooError(f"{cls.__name__} has no `family` name; set the class attribute `family = '...'`.")
    package = cls.__module__.rsplit(".", 1)[0] if cls.__module__.count(".") > 2 else cls.__module__
    for preset, entry in presets.items():
        unknown = set(entry) - set(PRESET_KEYS)
        missing = {"description", "config", "dataset", "image_size"} - set(entry)
        if unknown or missing:
            raise EbmZooError(
                f"Preset {preset!r} of family {name!r}: unknown keys {sorted(unknown)}, missing "
                f"{sorted(missing)}; a preset entry has {', '.join(PRESET_KEYS)}."
            )
    cls.__module__ = package
    family = Family(name, cls, package, dict(presets), dict(aliases or {}))
    _REGISTRY[name] = family
    return family


def families() -> dict[str, Family]:
    """Every registered family {name: Family}, importing each family folder once."""
    global _DISCOVERED
    if not _DISCOVERED:
        from ebm_zoo.utils import cli

        if cli.tf_logs_quiet():  # a CLI resolving --model: keep TF's load-time lines quiet
            cli.import_tensorflow_quietly(python_logs=False)
        folder = os.path.dirname(os.path.abspath(__file__))  # ebm_zoo/models/
        for info in sorted(pkgutil.iter_modules([folder]), key=lambda m: m.name):
            if info.ispkg:
                importlib.import_module(f"ebm_zoo.models.{info.name}")
        _DISCOVERED = True
    return dict(sorted(_REGISTRY.items()))


def config_aliases() -> dict[str, str]:
    """`--model` alias -> config module, from every family's registration."""
    out: dict[str, str] = {}
    for family in families().values():
        out.update(family.aliases)
    return out


#: What every family implements or sets (beyond EnergyModel's defaults); see CONVENTIONS.md.
CONTRACT = (
    "_energy",
    "_sample",
    "chain_start",
    "default_num_steps",
    "train_step",
    "get_config",
)


def contract_gaps(cls: type) -> list[str]:
    """The parts of the EnergyModel contract that `cls` does not implement ([] = complete)."""
    from ebm_zoo.models.base import EnergyModel

    gaps = []
    if not (isinstance(cls, type) and issubclass(cls, EnergyModel)):
        return [f"{getattr(cls, '__name__', cls)} is not an EnergyModel subclass"]
    if not getattr(cls, "family", ""):
        gaps.append("family")
    for name in CONTRACT:
        if getattr(cls, name, None) is getattr(EnergyModel, name, None):
            gaps.append(name)
    import keras

    if keras.saving.get_registered_object(f"ebm_zoo>{cls.__name__}") is not cls:
        gaps.append("register_keras_serializable(package='ebm_zoo')")
    return gaps
