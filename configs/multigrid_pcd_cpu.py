"""Persistent-CD baseline of the multi-grid paper on the data of `multigrid_cpu`.

One 16×16 energy net; one persistent chain per batch row (ReplayBuffer, sequential mode,
`pcd_chains` = batch size), first started at the data, T = 30 official sampler steps per
iteration. `python tools/train.py --model=multigrid_pcd`.
"""

import ml_collections
from ebm_zoo.configs import multigrid_cpu


def get_config() -> ml_collections.ConfigDict:
    cfg = multigrid_cpu.get_config()
    cfg.description = "Persistent CD baseline (single 16×16 grid, persistent chains), LFW faces 16×16"
    cfg.model.mode = "pcd"
    cfg.model.pcd_mode = "sequential"
    cfg.model.pcd_chains = cfg.data.batch_size
    return cfg
