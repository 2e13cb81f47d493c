"""Small helpers shared by every module: input checks, image grids.

`ebm_zoo.utils.images` (grids as PNG: `save_grid`) and `ebm_zoo.utils.checks` are importable as
attributes without an explicit import; `checks` pulls in TensorFlow, so both load lazily.
"""

_SUBMODULES = ("checks", "images")


def __getattr__(name: str):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
