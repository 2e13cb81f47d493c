"""`multigrid_cpu` with batch-independent normalisation (`norm="layer"`): the serving variant.

With the original batch-statistics BatchNorm a score, a sample and an inpainting depend on the
other images of the batch; with per-image normalisation (GroupNorm with one group over H, W, C)
they do not, so an exported model answers every request on its own. Measured effect on sample
quality: docs/multigrid.md. `python tools/train.py --model=multigrid_layer_cpu`.
"""

import ml_collections
from ebm_zoo.configs import multigrid_cpu


def get_config() -> ml_collections.ConfigDict:
    cfg = multigrid_cpu.get_config()
    cfg.description = (
        "Multi-grid EBM, LFW faces 16×16, grids 1/4/16, per-image (layer) norm: batch-independent"
    )
    cfg.model.norm = "layer"
    return cfg
