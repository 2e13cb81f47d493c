"""Multi-grid generative ConvNets (Gao et al. 2018) and their CD / PCD baselines.

multigrid_model.py: the model (MultiGrid); multigrid_presets.py: its presets (data).
"""

from ebm_zoo.models.multigrid.multigrid_model import (
    MultiGrid,
    down_sample,
    make_mask,
    masked_psnr,
    mean_colour_fill,
    suggest_grids,
    up_sample,
    validate_grids,
)
from ebm_zoo.models.multigrid.multigrid_presets import PRESETS
from ebm_zoo.models.registry import register_family

register_family(
    MultiGrid,
    PRESETS,
    aliases={
        "multigrid": "multigrid_cpu",
        "multigrid_cd": "multigrid_cd_cpu",
        "multigrid_pcd": "multigrid_pcd_cpu",
    },
)

__all__ = [
    "MultiGrid",
    "down_sample",
    "make_mask",
    "masked_psnr",
    "mean_colour_fill",
    "suggest_grids",
    "up_sample",
    "validate_grids",
    "PRESETS",
]
