"""Contrastive-divergence baseline of the multi-grid paper on the data of `multigrid_cpu`.

One 16×16 energy net (the same net as the finest grid of `multigrid_cpu`), chains start at the
training batch and run T = 30 official sampler steps. `python tools/train.py --model=multigrid_cd`.
"""

import ml_collections
from ebm_zoo.configs import multigrid_cpu


def get_config() -> ml_collections.ConfigDict:
    cfg = multigrid_cpu.get_config()
    cfg.description = "Contrastive divergence baseline (single 16×16 grid, chains from data), LFW faces 16×16"
    cfg.model.mode = "cd"
    return cfg
