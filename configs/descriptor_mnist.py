"""Generative ConvNet (Xie et al. 2016), object mode, on full MNIST (`mnist_local`, 28×28 gray).

The descriptor's model p(x) ∝ exp(f(x))·N(x; 0, σ²I) with a LeakyReLU ConvNet 28 → 14 → 7
(32/64/64 filters, dense top at fixed positions = object mode) on [−1, 1] pixels, σ = 1. Chains
start from noise every iteration (`chain_init="noise"`), i.e. training synthesises exactly the
way `model.sample()` does; K = 40 Langevin steps of δ = 0.3 with noise scale 0.1 (short-run
practice: full-scale noise at this δ would leave visible grain in every sample). Adam 5e-4,
batch 64 (the paper's object experiments use a few hundred images with SGD; on 60,000 digits
within a CPU budget Adam is what learns). Pilot (Intel Xeon, 2 vCPUs, load average 9–11):
0.6–0.85 s/step; a quiet machine is ≈ 2× faster (ggcn_mnist and short_run_mnist measured at load
≈ 2.3), ≈ 0.3–0.4 s/step. Expected wall-clock on 2 quiet cores: 10,000 steps (10.7 epochs) → 50–70 min. After 600 steps: clean
black background, sharp white stroke shapes, few of them readable digits; FD-MNIST 217 (500
samples; blurred-train baseline 413 at 5,000).

The shipped `descriptor_mnist` is this config's full run (2026-12-02, Intel Xeon with AVX-512, 2
vCPUs shared with a second training and at times other jobs, load average 2–17): 10,000
iterations in 5,965 s wall-clock (≈ 0.4–0.6 s/iteration), then `tools/eval.py --protocol=mnist`:
FD-MNIST 112.7, classifier score 5.90, 9.46 effective classes, precision 0.29, recall 0.97.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "Generative ConvNet (object mode, short-run chains from noise) on full MNIST 28x28"
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
            image_size=28,
            channels=1,
            seed=0,
            mode="object",
            layers=[[32, 3, 2], [64, 3, 2], [64, 3, 1]],
            activation="leaky_relu",
            learning="ml",
            chain_init="noise",
            num_chains=64,
            synth_size=28,
            num_steps=40,
            sample_steps=40,
            step_size=0.3,
            ref_sigma=1.0,
            noise_scale=0.1,
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
        dict(name="mnist_local", image_size=28, batch_size=64, split="train", channels=1)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=10000, log_every=100, checkpoint_every=1000, num_samples=64, seed=0)
    )
    return c
