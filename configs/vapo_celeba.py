"""VAPO on CelebA 64×64 (Loo et al., arXiv:2407.15238; MODELS.md §4), GPU-sized.

Same recipe as `vapo_cifar10` at 64×64, as in the official `configs/homotopy/celeba.py`: the same
U-Net (128 channels, multipliers (2, 2, 2), 4 residual blocks, dropout 0.3, 55.7M parameters)
with attention at the first down-sampled resolution, here 32×32 (the official
`attention_resolutions=[2]` is a down-sampling rate). Batch 64 as in MODELS.md and the official
README (the official config file sets 16). Needs the TFDS `celeb_a` data prepared locally.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "VAPO potential flow on CelebA 64x64 (GPU-sized)"
    c.model = ml_collections.ConfigDict(
        dict(
            family="vapo",
            image_size=64,
            channels=3,
            seed=0,
            base_channels=128,
            channel_mults=[2, 2, 2],
            num_res_blocks=4,
            attn_resolutions=[32],
            dropout=0.3,
            time_embed_dim=128,
            max_groups=32,
            time_scale=1.0,
            loss="official",
            w_corr=1.0,
            w_norm=0.5,
            w_time=0.1,
            w_align=1.0,
            pixel_reduction="mean",
            align_time_power=True,
            detach_corr_scale=True,
            learning_rate=1e-4,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-8,
            warmup_steps=5000,
            grad_clip=3.0,
            grad_clip_mode="std",
            ema_decay=0.9999,
            solver="dopri5",
            rtol=1e-3,
            atol=1e-3,
            num_steps=100,
        )
    )
    c.data = ml_collections.ConfigDict(dict(name="celeb_a", image_size=64, batch_size=64, split="train"))
    c.train = ml_collections.ConfigDict(
        dict(steps=1_000_000, log_every=100, checkpoint_every=10_000, num_samples=64, seed=0)
    )
    return c
