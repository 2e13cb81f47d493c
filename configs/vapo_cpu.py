"""VAPO on the scikit-learn digits (8×8 gray, shipped), sized to learn in minutes on 2 CPU cores.

The official recipe (MODELS.md §4 and the official `configs/homotopy/cifar10.py`: the official
loss and weights with per-pixel means, t ~ U(1e-5, 1), Adam 1e-4 with linear warm-up, the
Adam-moment "std" gradient clip c = 3, EMA sampling weights, dopri5 rtol = atol = 1e-3) with a
small U-Net (32 base channels, multipliers (1, 2), 1 residual block per level, attention at 4×4,
no dropout), a short warm-up (100 steps) and a fast EMA (0.995) for a 4,000-step run.
With a learning rate of 3e-4 the same run collapses to a few blurred modes (docs/vapo.md).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "VAPO potential flow on sklearn digits 8x8 (CPU-sized, shipped data)"
    c.model = ml_collections.ConfigDict(
        dict(
            family="vapo",
            image_size=8,
            channels=1,
            seed=0,
            base_channels=32,
            channel_mults=[1, 2],
            num_res_blocks=1,
            attn_resolutions=[4],
            dropout=0.0,
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
            warmup_steps=100,
            grad_clip=3.0,
            grad_clip_mode="std",
            ema_decay=0.995,
            solver="dopri5",
            rtol=1e-3,
            atol=1e-3,
            num_steps=100,
        )
    )
    c.data = ml_collections.ConfigDict(dict(name="digits", image_size=8, batch_size=64, split="train"))
    c.train = ml_collections.ConfigDict(
        dict(steps=4000, log_every=100, checkpoint_every=1000, num_samples=64, seed=0)
    )
    return c
