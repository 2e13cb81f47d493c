"""GGCN on shipped data, sized for 2 CPU cores: LFW faces (scikit-image `lfw_subset`) at 16×16 gray.

The default of `python tools/train.py --model=ggcn`. Generator from a 4×4×8 normal code through two
learned ×2 blocks; energy ConvNet 16 → 8 → 4 with a dense top; K = 10 wGCN refinement steps
(split solver, J = 2, δ = 0.5 on [−1, 1] pixels, noise scale 0.05: with full-scale noise
(s = 1) the few revision steps are dominated by noise the generator cannot learn) per iteration.
Same data and size as `multigrid_cpu`, for comparisons. About 150 s per 1,500 steps on 2 cores.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "GGCN on LFW faces (16x16 gray, shipped with scikit-image), CPU-sized"
    c.model = ml_collections.ConfigDict(
        dict(
            family="ggcn",
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
            latent_shape=[4, 4, 8],
            gen_filters=64,
            gen_min_filters=16,
            gen_base_size=4,
            gen_upsample="transpose",
            gen_norm="none",
            gen_activation="leaky_relu",
            score_layers=[[32, 3, 2], [64, 3, 2], [64, 3, 1]],
            score_top="dense",
            score_activation="leaky_relu",
            ref_sigma=1.0,
            num_steps=10,
            step_size=0.5,
            implicit_iters=2,
            noise_scale=0.05,
            solver="split",
            gen_sigma=0.3,
            latent_steps=0,
            latent_step_size=0.1,
            energy_lr=5e-4,
            gen_lr=3e-4,
            beta_1=0.5,
            beta_2=0.999,
            score_reg=0.0,
            trace_points=5,
        )
    )
    c.data = ml_collections.ConfigDict(
        dict(name="lfw_faces", image_size=16, batch_size=30, split="train", channels=1)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=2000, log_every=100, checkpoint_every=500, num_samples=36, seed=0)
    )
    return c
