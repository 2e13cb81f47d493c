"""Multi-grid EBM as in the paper: CelebA 64×64 RGB, grids 1 → 4 → 16 → 64, batch 100, T = 30.

Faithful to MODELS.md §2: the paper's nets (width 1.0), batch-statistics BatchNorm, official
noise-free sampler with δ = 0.3, Adam lr 0.3, β1 0.5, β2 0.999, ε 1e-8, 700 epochs of the
162,770 training images (≈ 1.14M iterations). Needs TFDS `celeb_a` prepared on disk and a GPU:
one iteration takes minutes on 2 CPU cores (see `python tools/bench.py --suites=multigrid`).
"""

import ml_collections
from ebm_zoo.configs import multigrid_cpu

_EPOCHS = 700
_TRAIN_IMAGES = 162_770


def get_config() -> ml_collections.ConfigDict:
    cfg = multigrid_cpu.get_config()
    cfg.description = "Multi-grid EBM (Gao et al. 2018), CelebA 64×64, grids 1/4/16/64, batch 100, T=30"
    cfg.model.update(
        dict(image_size=64, channels=3, grids=[1, 4, 16, 64], width=1.0, num_steps=30, pcd_chains=100)
    )
    cfg.data = ml_collections.ConfigDict(
        dict(name="celeb_a", image_size=64, batch_size=100, split="train", channels=3)
    )
    steps = _EPOCHS * _TRAIN_IMAGES // 100 // 1000 * 1000
    cfg.train = ml_collections.ConfigDict(
        dict(steps=steps, log_every=1000, checkpoint_every=10_000, num_samples=100, seed=0)
    )
    return cfg
