"""Persistent-CD baseline of the multi-grid paper on full MNIST, at `multigrid_mnist`'s budget.

One 28×28 energy net (the finest-grid net of `multigrid_mnist`); one persistent chain per batch
row (sequential mode, `pcd_chains` = batch size 64), first started at the data, T = 30 official
sampler steps per iteration; same optimiser and 4,000 iterations. Pilot (Intel Xeon, 2 vCPUs,
load ≈ 10): 1.1 s/iteration; ≈ 2× faster quiet, so ≈ 40 min on 2 quiet cores.

The shipped `multigrid_pcd_mnist` is this config's full run (2026-12-02, AMD EPYC family 26 with
AVX-512 BF16, 2 vCPUs shared with a second training, load average 4–7): 4,000 iterations in 921 s
wall-clock / 973 training CPU-s. The persistent chains learned faint digit shapes, but
`model.sample()` starts from the flat colour and its 30 steps give dim, blotchy squares with
ghosts of strokes (FD-MNIST 487, classifier score 1.04, precision 0.08, recall 0); the energy does
rank every OOD set above MNIST (AUROC 0.98–1.00).
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
