"""wGCN on shipped data, sized for 2 CPU cores: LFW faces (scikit-image `lfw_subset`) at 16×16 gray.

The default of `python tools/train.py --model=wgcn`. The generative ConvNet (object mode, ReLU,
centred [0, 255] pixels, σ = 1, persistent chains) whose particles move by the implicit JKO step:
τ = 2 (δ = 2), at which explicit Langevin sits on its stability limit τ/σ² = 2, solved by J = 3
iterations of the split solver. Set model.solver="fixed_point", model.implicit_iters=1 for the
plain descriptor sampler at the same τ.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "wGCN (generative ConvNet + JKO particle flow) on LFW faces, 16x16 gray, CPU-sized"
    c.model = ml_collections.ConfigDict(
        dict(
            family="wgcn",
            image_size=16,
            channels=1,
            seed=0,
            mode="object",
            layers=[[32, 3, 2], [64, 3, 2]],
            activation="relu",
            learning="ml",
            chain_init="persistent",
            num_chains=30,
            num_steps=20,
            tau=2.0,
            implicit_iters=3,
            solver="split",
            trace_points=5,
            ref_sigma=1.0,
            noise_scale=1.0,
            clip_pixels=True,
            pixel_scale=255.0,
            pixel_offset=127.5,
            optimizer="adam",
            learning_rate=3e-4,
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
