"""Model families, looked up by name (lazily: importing this module builds nothing)."""

from __future__ import annotations

import importlib

from ebm_zoo.utils.checks import EbmZooError

# family name -> "module:Class". Each family module registers its class with Keras.
FAMILIES: dict[str, str] = {
    "descriptor": "ebm_zoo.models.descriptor:Descriptor",
    "multigrid": "ebm_zoo.models.multigrid:MultiGrid",
    "wgcn": "ebm_zoo.models.ggcn:WGCN",
    "ggcn": "ebm_zoo.models.ggcn:GGCN",
    "vapo": "ebm_zoo.models.vapo:VAPO",
    "short_run": "ebm_zoo.models.short_run:ShortRun",
    "energy_matching": "ebm_zoo.models.energy_matching:EnergyMatching",
}


def get_model_class(family: str):
    """Returns the Keras model class of a family name."""
    if family not in FAMILIES:
        raise EbmZooError(f"Unknown model family {family!r}; valid families: {', '.join(sorted(FAMILIES))}.")
    module, cls = FAMILIES[family].split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as e:  # a family listed but not present in this install
        raise EbmZooError(f"Model family {family!r} is not available in this install ({e}).") from e


def build_model(model_config) -> keras.Model:  # noqa: F821
    """Builds a model from a config mapping with a `family` key plus constructor arguments."""
    cfg = dict(model_config)
    family = cfg.pop("family", None)
    if family is None:
        raise EbmZooError("The model config has no `family` key; add e.g. family='descriptor'.")
    cls = get_model_class(family)
    try:
        return cls(**cfg)
    except TypeError as e:
        raise EbmZooError(f"Bad arguments for model family {family!r}: {e}") from e
