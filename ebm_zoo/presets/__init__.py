"""Named presets: a registry (data), `load(handle)`, `list_presets()`, and preset directories.

    import ebm_zoo
    ebm_zoo.list_models()                        # = ebm_zoo.presets.list_presets()
    model = ebm_zoo.load("descriptor_brick")     # shipped weights, sha256-checked
    model = ebm_zoo.load("ggcn_celeba", weights=False)   # the architecture, untrained

See ebm_zoo.presets.loader for the resolution order and ebm_zoo.presets.files for the directory
format. Importing this package does not import TensorFlow.
"""

from ebm_zoo.presets.files import load_preset_dir, load_workdir, save_preset, sha256_file
from ebm_zoo.presets.loader import (
    export_workdir,
    fetch,
    get_preset,
    home,
    home_dir,
    list_presets,
    load,
    offline,
    package_dir,
    weights_status,
)
from ebm_zoo.presets.registry import PRESETS, PresetInfo

__all__ = [
    "PRESETS",
    "PresetInfo",
    "export_workdir",
    "fetch",
    "get_preset",
    "home",
    "home_dir",
    "list_presets",
    "load",
    "load_preset_dir",
    "load_workdir",
    "offline",
    "package_dir",
    "save_preset",
    "sha256_file",
    "weights_status",
]
