"""Model families: one folder per family (ebm_zoo/models/<family>/), found by ebm_zoo.models.registry.

`FAMILIES` ({family: "module:Class"}) is computed on first use: importing this package builds nothing.
"""

from __future__ import annotations

from ebm_zoo.utils.checks import EbmZooError


def __getattr__(name: str):
    if name == "FAMILIES":
        from ebm_zoo.models.registry import families

        return {f.name: f"{f.module}:{f.cls.__name__}" for f in families().values()}
    raise AttributeError(f"module 'ebm_zoo.models' has no attribute {name!r}")


def get_model_class(family: str):
    """Returns the Keras model class of a family name."""
    from ebm_zoo.models.registry import families

    found = families()
    if family not in found:
        raise EbmZooError(f"Unknown model family {family!r}; valid families: {', '.join(sorted(found))}.")
    return found[family].cls


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
