"""Contrastive-divergence baseline of the multi-grid paper on full MNIST, at `multigrid_mnist`'s budget.

One 28×28 energy net (the finest-grid net of `multigrid_mnist`), chains start at the training
batch and run T = 30 official sampler steps; same optimiser, batch 64 and 3,000 iterations. One
net instead of two, so each iteration is somewhat cheaper: expected ≤ the multi-grid's 50–75 min
on 2 quiet cores (pilot figures in the issue-11 report). `model.sample()` starts, like the
multi-grid's CD baseline always does, from the flat colour, which CD never trained from.
"""

import ml_collections
from ebm_zoo.configs import multigrid_mnist


def get_config() -> ml_collections.ConfigDict:
    cfg = multigrid_mnist.get_config()
    cfg.description = "Contrastive divergence baseline (single 28x28 grid, chains from data), full MNIST"
    cfg.model.mode = "cd"
    return cfg
