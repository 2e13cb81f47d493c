"""GGCN on CelebA 64×64 RGB (TFDS `celeb_a`): the `ggcn_celeba` preset's config (GPU-sized).

The paper (arXiv:1910.14216) publishes no code or hyper-parameter table; the sizes below are our
reading [reconstruction]: a 4×4×64 normal code up-sampled by four learned ×2 blocks, a four-layer
stride-2 energy ConvNet with a dense top, K = 20 wGCN steps (split solver, J = 2) from G(h). The
flow settings carry over from the CPU configs and were not tuned at this scale.
Needs the TFDS `celeb_a` data prepared on disk (no download from here).
"""

import ml_collections
from ebm_zoo.configs import ggcn_cpu


def get_config() -> ml_collections.ConfigDict:
    c = ggcn_cpu.get_config()
    c.description = "GGCN (wGCN energy + learned up-sampling generator) on CelebA 64x64 RGB"
    c.model.update(
        dict(
            image_size=64,
            channels=3,
            latent_shape=[4, 4, 64],
            gen_filters=512,
            gen_min_filters=32,
            score_layers=[[64, 4, 2], [128, 4, 2], [256, 4, 2], [512, 4, 2]],
            num_steps=20,
            energy_lr=1e-4,
            gen_lr=2e-4,
        )
    )
    c.data = ml_collections.ConfigDict(
        dict(name="celeb_a", image_size=64, batch_size=64, split="train", channels=3)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=100_000, log_every=500, checkpoint_every=5_000, num_samples=64, seed=0)
    )
    return c
