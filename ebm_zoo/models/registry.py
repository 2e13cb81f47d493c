"""The family registry: every sub-folder of ebm_zoo/models/ is a family that registers itself.

A family folder (keras-hub style, e.g. ebm_zoo/models/descriptor/) holds

    <family>_model.py     the EnergyModel subclass (and anything only this family uses)
    <family>_presets.py   PRESETS: {preset name: {description, config, dataset, image_size,
                          weights, sha256}} — data only
    __init__.py           re-exports the model and makes the one registration call:
                          register_family(Descriptor, PRESETS, aliases={"descriptor": "descriptor_texture"})

`families()` imports every sub-package of ebm_zoo.models once, so nothing central is edited to
add a family. `manifests()` gives the same presets and aliases WITHOUT importing the families
(and so TensorFlow): it reads each folder's data-only `<family>_presets.py` and the literal
`aliases={...}` of its `register_family` call, which is what tools need to check --model and
--preset flags; `register_family` refuses a registration that disagrees with its manifest. `contract_gaps(cls)` lists what a family class lacks of the EnergyModel contract
(docs/CONVENTIONS.md, "Adding a family"); tests/test_export.py fails on any gap.
"""

from __future__ import annotations

import ast
import importlib.util
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
    manifest = _manifest(package.rsplit(".", 1)[-1]) if package.startswith("ebm_zoo.models.") else None
    if manifest is not None and manifest != (family.presets, family.aliases):
        raise EbmZooError(
            f"Family {name!r} registers other presets/aliases than its folder declares statically "
            f"({package.rsplit('.', 1)[-1]}_presets.py PRESETS and the literal `aliases={{...}}` of "
            "register_family in its __init__.py); keep both in those two places."
        )
    _REGISTRY[name] = family
    return family


def families() -> dict[str, Family]:
    """Every registered family {name: Family}, importing each family folder once."""
    global _DISCOVERED
    if not _DISCOVERED:
        from ebm_zoo.utils import cli

        if cli.tf_logs_quiet():  # a CLI resolving --model: keep TF's load-time lines quiet
            cli.import_tensorflow_quietly(python_logs=False)
        for name in _family_folders():
            importlib.import_module(f"ebm_zoo.models.{name}")
        _DISCOVERED = True
    return dict(sorted(_REGISTRY.items()))


def _family_folders() -> list[str]:
    folder = os.path.dirname(os.path.abspath(__file__))  # ebm_zoo/models/
    return sorted(m.name for m in pkgutil.iter_modules([folder]) if m.ispkg)


_MANIFESTS: dict[str, tuple[dict, dict] | None] = {}


def _manifest(name: str) -> tuple[dict, dict] | None:
    """(PRESETS, aliases) of family folder `name` read without importing the folder: its
    `<name>_presets.py` executed on its own (data only) and the literal `aliases=` of the
    `register_family` call in its __init__.py. None when either is not statically readable."""
    if name not in _MANIFESTS:
        folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
        _MANIFESTS[name] = None
        try:
            spec = importlib.util.spec_from_file_location(
                f"_ebm_zoo_manifest_{name}", os.path.join(folder, f"{name}_presets.py")
            )
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            with open(os.path.join(folder, "__init__.py"), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            calls = [
                node
                for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register_family"
            ]
            if len(calls) == 1:
                keywords = {k.arg: k.value for k in calls[0].keywords}
                aliases = ast.literal_eval(keywords["aliases"]) if "aliases" in keywords else {}
                _MANIFESTS[name] = (dict(module.PRESETS), dict(aliases))
        except (OSError, SyntaxError, ValueError, AttributeError, KeyError):
            pass
    return _MANIFESTS[name]


def manifests() -> dict[str, tuple[dict, dict]]:
    """{family: (PRESETS, aliases)} of every family folder, without importing TensorFlow (see the
    module docstring); a folder whose manifest is not statically readable is imported instead."""
    out = {}
    for name in _family_folders():
        found = _manifest(name)
        if found is None:
            family = families()[name]
            found = (family.presets, family.aliases)
        out[name] = found
    return out


def config_aliases() -> dict[str, str]:
    """`--model` alias -> config module, from every family's registration (TF-free: `manifests`)."""
    out: dict[str, str] = {}
    for _, aliases in manifests().values():
        out.update(aliases)
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
