"""Generative ConvNet learned from one texture image (Xie et al. 2016, texture synthesis).

CPU-sized: the scikit-image brick texture (512×512, shipped with the package) resized to 64×64
gray; 16 persistent chains synthesise 64×64 textures. The net and sampler follow the paper's
texture setting (ReLU ConvNet, score summed over positions, δ = 0.3, σ = 1 on centred [0, 255]
pixels, persistent chains); the optimizer is Adam, which learns within the CPU budget.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "Generative ConvNet on the brick texture (64x64 gray, shipped with scikit-image)"
    c.model = ml_collections.ConfigDict(
        dict(
            family="descriptor",
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
            image_size=64,
            channels=1,
            seed=0,
            mode="texture",
            layers=[[64, 7, 2], [64, 5, 2], [64, 3, 1]],
            activation="relu",
            learning="ml",
            chain_init="persistent",
            num_chains=16,
            synth_size=64,
            num_steps=20,
            sample_steps=1000,
            step_size=0.3,
            ref_sigma=1.0,
            noise_scale=1.0,
            clip_pixels=True,
            pixel_scale=255.0,
            pixel_offset=127.5,
            optimizer="adam",
            learning_rate=1e-3,
            momentum=0.5,
            grad_norm_by_filters=False,
            grad_clip=0.0,
            divergence_threshold=1e12,
        )
    )
    c.data = ml_collections.ConfigDict(
        dict(name="textures/brick", image_size=64, batch_size=1, split="train", crop=False)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=600, log_every=50, checkpoint_every=200, num_samples=16, seed=0)
    )
    return c
