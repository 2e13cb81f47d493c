"""ebm_zoo: energy-based generative ConvNets for TensorFlow 2 / Keras 3.

Importing the package is cheap: TensorFlow is imported only when a model, a dataset or a
preset is actually used.

    import ebm_zoo
    ebm_zoo.list_models()                  # preset names, e.g. ["descriptor_brick", ...]
    ebm_zoo.describe_models()              # prints one line per preset, with its weights status
    model = ebm_zoo.load("descriptor_brick")
    images = model.sample(16, seed=0)      # float32 [16, H, W, C] in [0, 1]
    ebm_zoo.utils.images.save_grid(images, "samples.png")
"""

__version__ = "0.1.0"

__all__ = ["__version__", "describe_models", "list_models", "load"]


def list_models() -> list[str]:
    """The preset names (sorted); prints nothing. Details: `describe_models()`."""
    from ebm_zoo.presets import PRESETS

    return sorted(PRESETS)


def describe_models(verbose: bool = True) -> list[dict]:
    """One row per preset: name, description, family, config, dataset, image_size and weights
    status ('package', 'local', 'download' or 'none'); with `verbose`, prints them as a table."""
    from ebm_zoo.presets import list_presets

    return list_presets(verbose=verbose)


def load(handle: str, *args, **kwargs):
    """Loads a model from a preset name, a preset directory or a URI (see ebm_zoo.presets.load)."""
    from ebm_zoo.presets import load as _load

    return _load(handle, *args, **kwargs)


def __getattr__(name: str):
    """Lazy subpackages: `ebm_zoo.utils.images.save_grid(...)` works right after `import ebm_zoo`."""
    if name == "utils":
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
