"""Short-run MCMC EBM with a replay buffer (Nijkamp et al. 2019; Du & Mordatch 2019) on digits.

CPU-sized baseline: scikit-learn's 8×8 digits up-sampled to 16×16 gray, pixels in [−1, 1],
40 Langevin steps with gradient coefficient δ²/2 = 1 and noise std 0.005 (δ = √2, noise_scale
0.005/√2), chains from uniform noise or a 5 %-re-initialised replay buffer, Adam 1e-4.
"""

import math

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "Short-run MCMC EBM + replay buffer on scikit-learn digits (16x16 gray)"
    c.model = ml_collections.ConfigDict(
        dict(
            family="short_run",
            sampler="langevin",  # "langevin" | "mala" | "hmc" (docs/sampling.md)
            # MALA/HMC settings; None = the sampler's default (step_size: sδ)
            sampler_options=dict(
                step_size=None,
                num_leapfrog_steps=None,
                target_accept=None,
                adapt_steps=None,
                adapt_rate=None,
                boundary=None,
            ),
            image_size=16,
            channels=1,
            seed=0,
            mode="object",
            layers=[[32, 3, 1], [64, 4, 2], [128, 4, 2]],
            activation="swish",
            num_chains=64,
            synth_size=16,
            num_steps=40,
            sample_steps=40,
            step_size=math.sqrt(2.0),
            ref_sigma=1.0,
            noise_scale=0.005 / math.sqrt(2.0),
            clip_pixels=True,
            pixel_scale=2.0,
            pixel_offset=1.0,
            optimizer="adam",
            learning_rate=1e-4,
            momentum=0.5,
            grad_norm_by_filters=False,
            grad_clip=0.0,
            divergence_threshold=1e8,
            replay_capacity=4096,
            replay_reinit_prob=0.05,
        )
    )
    c.data = ml_collections.ConfigDict(dict(name="digits", image_size=16, batch_size=64, split="train"))
    c.train = ml_collections.ConfigDict(
        dict(steps=1000, log_every=50, checkpoint_every=250, num_samples=64, seed=0)
    )
    return c
