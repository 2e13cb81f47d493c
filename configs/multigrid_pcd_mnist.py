"""Persistent-CD baseline of the multi-grid paper on full MNIST, at `multigrid_mnist`'s budget.

One 28×28 energy net (the finest-grid net of `multigrid_mnist`); one persistent chain per batch
row (sequential mode, `pcd_chains` = batch size 64), first started at the data, T = 30 official
sampler steps per iteration; same optimiser and 4,000 iterations. Pilot (Intel Xeon, 2 vCPUs,
load ≈ 10): 1.1 s/iteration; ≈ 2× faster quiet, so ≈ 40 min on 2 quiet cores.
"""

import ml_collections
from ebm_zoo.configs import multigrid_mnist


def get_config() -> ml_collections.ConfigDict:
    cfg = multigrid_mnist.get_config()
    cfg.description = "Persistent CD baseline (single 28x28 grid, persistent chains), full MNIST"
    cfg.model.mode = "pcd"
    cfg.model.pcd_mode = "sequential"
    cfg.model.pcd_chains = cfg.data.batch_size
    return cfg
