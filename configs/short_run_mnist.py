"""Short-run MCMC EBM (Nijkamp et al. 2019) on full MNIST: non-persistent chains from noise.

`mnist_local` (the official 60,000 training digits), 28×28 gray, pixels in [−1, 1]. The net of
`short_run_digits` (swish ConvNet 28 → 14 → 7, 32/64/128 filters) and its sampler: K = 40 Langevin
steps, gradient coefficient δ²/2 = 1, noise std 0.005, Adam 1e-4 (β1 0.5), batch 64. Every
training iteration starts its chains from uniform noise, exactly as `model.sample()` does, so the
fresh samples that the benchmark evaluates are the ones the training shaped (Nijkamp et al.'s
short-run setting; no replay buffer).
History: until 2026-12-02 this preset trained with a replay buffer (10,000 chains, 5 % restarted
from noise, Du & Mordatch 2019). Its persistent chains learned, but `model.sample()`'s 40 steps from
fresh noise then gave noisy blobs (FD-MNIST 256, classifier score 2.99, 7.01 effective classes).
Length: 20,000 iterations (2026-12-03; 8,000 before that, 2,500 at first). The same run scored at
2,500 / 5,000 / 8,000 / 15,000 / 17,500 / 20,000 iterations: FD-MNIST 94.5 / 73.5 / 56.6 / 39.0 /
37.6 / 33.7, classifier score 6.43 / 6.95 / 7.50 / 7.55 / 7.71 / 7.83 (tools/eval.py
--protocol=mnist; docs/benchmarks/short_run_mnist_length.json, rendered in docs/benchmarks.md).
Wall-clock on 2 quiet cores (AMD EPYC): ≈ 0.5–0.6 s per iteration, so ≈ 3 h for 20,000 iterations
(this run: 20,497 training CPU-s, trained in several resumed invocations, partly on one core while the
other ran the TorchEBM peer; `tools/train.py` resumes from the last checkpoint, so it can be split
across sessions).
"""

import math

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = (
        "Short-run MCMC EBM (non-persistent, chains from noise) on full MNIST (mnist_local, 28x28 gray)"
    )
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
            image_size=28,
            channels=1,
            seed=0,
            mode="object",
            layers=[[32, 3, 1], [64, 4, 2], [128, 4, 2]],
            activation="swish",
            num_chains=64,
            synth_size=28,
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
            replay_capacity=0,
            replay_reinit_prob=0.05,
        )
    )
    c.data = ml_collections.ConfigDict(
        dict(name="mnist_local", image_size=28, batch_size=64, split="train", channels=1)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=20000, log_every=100, checkpoint_every=500, num_samples=64, seed=0)
    )
    return c
