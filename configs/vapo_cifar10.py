"""VAPO on CIFAR-10 (Loo et al., arXiv:2407.15238), as in the official code (MODELS.md §4).

The faithful GPU setting, from the official code's `configs/homotopy/cifar10.py`: 32×32×3 images
in [−1, 1], the U-Net with 128 base channels, multipliers (2, 2, 2), 4 residual blocks per level,
attention at 16×16, dropout 0.3, scale-shift time conditioning (55,676,419 parameters — the
official README's 55.7M), loss weights 1 / 0.5 / 0.1 / 1 with per-pixel means, Adam 1e-4 with a
5k-step warm-up, the "std" gradient clip with c = 3, EMA 0.9999, dopri5 sampling with
rtol = atol = 1e-3. Batch 128 as in MODELS.md and the official README (the official config file
itself sets 64). Needs the TFDS `cifar10` data prepared locally (no download on these machines).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "VAPO potential flow on CIFAR-10 32x32 (official U-Net, GPU-sized)"
    c.model = ml_collections.ConfigDict(
        dict(
            family="vapo",
            image_size=32,
            channels=3,
            seed=0,
            base_channels=128,
            channel_mults=[2, 2, 2],
            num_res_blocks=4,
            attn_resolutions=[16],
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
    c.data = ml_collections.ConfigDict(dict(name="cifar10", image_size=32, batch_size=128, split="train"))
    c.train = ml_collections.ConfigDict(
        dict(steps=1_300_000, log_every=100, checkpoint_every=10_000, num_samples=64, seed=0)
    )
    return c
