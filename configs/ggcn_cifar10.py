"""GGCN on CIFAR-10 32×32 RGB (TFDS `cifar10`), GPU-sized.

Sizes are our reading of the paper [reconstruction] (no code or table was published): a 4×4×64
normal code through three learned ×2 blocks, a three-layer stride-2 energy ConvNet with a dense
top, K = 20 wGCN steps. Reference point from the predecessor paper (arXiv:1812.01186): Inception
score 5.52–6.05 for wFRAME on CIFAR-10. Needs TFDS `cifar10` prepared on disk.
"""

import ml_collections
from ebm_zoo.configs import ggcn_cpu


def get_config() -> ml_collections.ConfigDict:
    c = ggcn_cpu.get_config()
    c.description = "GGCN on CIFAR-10 32x32 RGB"
    c.model.update(
        dict(
            image_size=32,
            channels=3,
            latent_shape=[4, 4, 64],
            gen_filters=512,
            gen_min_filters=64,
            score_layers=[[64, 3, 2], [128, 3, 2], [256, 3, 2]],
            num_steps=20,
            energy_lr=1e-4,
            gen_lr=2e-4,
        )
    )
    c.data = ml_collections.ConfigDict(
        dict(name="cifar10", image_size=32, batch_size=100, split="train", channels=3)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=100_000, log_every=500, checkpoint_every=5_000, num_samples=64, seed=0)
    )
    return c
