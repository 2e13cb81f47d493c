"""Short-run MCMC EBM with a replay buffer (Nijkamp et al. 2019).

short_run_model.py: the model (ShortRun); short_run_presets.py: its presets (data).
"""

from ebm_zoo.models.registry import register_family
from ebm_zoo.models.short_run.short_run_model import (
    ShortRun,
)
from ebm_zoo.models.short_run.short_run_presets import PRESETS

register_family(ShortRun, PRESETS, aliases={"short_run": "short_run_digits"})

__all__ = ["ShortRun", "PRESETS"]
