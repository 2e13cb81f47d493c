"""wGCN on shipped data, sized for 2 CPU cores: LFW faces (scikit-image `lfw_subset`) at 16×16 gray.

The default of `python tools/train.py --model=wgcn`. The generative ConvNet (object mode,
LeakyReLU, the GGCN energy net, persistent chains) on [−1, 1] pixels with σ = 0.5, whose particles
move by the implicit JKO step τ = 0.25 (τ/σ² = 1: the plain fixed-point solver no longer
converges there) solved by J = 3 iterations of the split solver, with noise scale 0.05 (short-run
practice). Set model.solver="fixed_point", model.implicit_iters=1 for the plain descriptor sampler
at the same τ. The lab's descriptor scale (centred [0, 255], σ = 1) learned far more slowly on CPU
(docs/ggcn.md). About 0.28 s per iteration on the shared 2-core machine.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "wGCN (generative ConvNet + JKO particle flow) on LFW faces, 16x16 gray, CPU-sized"
    c.model = ml_collections.ConfigDict(
        dict(
            family="wgcn",
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
            layers=[[32, 3, 2], [64, 3, 2], [64, 3, 1]],
            activation="leaky_relu",
            learning="ml",
            chain_init="persistent",
            num_chains=30,
            num_steps=20,
            tau=0.25,
            implicit_iters=3,
            solver="split",
            trace_points=5,
            ref_sigma=0.5,
            noise_scale=0.05,
            clip_pixels=True,
            pixel_scale=2.0,
            pixel_offset=1.0,
            optimizer="adam",
            learning_rate=5e-4,
            momentum=0.5,
            grad_norm_by_filters=False,
            grad_clip=0.0,
            divergence_threshold=1e12,
        )
    )
    c.data = ml_collections.ConfigDict(
        dict(name="lfw_faces", image_size=16, batch_size=30, split="train", channels=1)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=1000, log_every=50, checkpoint_every=250, num_samples=36, seed=0)
    )
    return c
