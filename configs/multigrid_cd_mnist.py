"""Contrastive-divergence baseline of the multi-grid paper on full MNIST, at `multigrid_mnist`'s budget.

One 28×28 energy net (the finest-grid net of `multigrid_mnist`), chains start at the training
batch and run T = 30 official sampler steps; same optimiser, batch 64 and 4,000 iterations.
Pilot (Intel Xeon, 2 vCPUs, load ≈ 9): 1.0 s/iteration; ≈ 2× faster quiet, so ≈ 35 min on 2 quiet
cores. In the pilot the CD loss and gradient were ≈ 0 from the start (noise-free chains started at
the data barely move): the known failure this baseline documents. `model.sample()` starts, like
every multi-grid mode, from the flat colour, which CD never trained from.

The shipped `multigrid_cd_mnist` is this config's full run (2026-12-02, AMD EPYC family 26 with
AVX-512 BF16, 2 vCPUs shared with a second training, load average 4–7): 4,000 iterations in
984 s wall-clock / 947 training CPU-s, then `tools/eval.py --protocol=mnist`: every sample is a
flat grey square (FD-MNIST 525, classifier score 1.00, precision and recall 0), and the energy
ranks every OOD set *below* MNIST (AUROC 0.001–0.41): CD's known failure, kept as the baseline.
"""

import ml_collections
from ebm_zoo.configs import multigrid_mnist


def get_config() -> ml_collections.ConfigDict:
    cfg = multigrid_mnist.get_config()
    cfg.description = "Contrastive divergence baseline (single 28x28 grid, chains from data), full MNIST"
    cfg.model.mode = "cd"
    return cfg
