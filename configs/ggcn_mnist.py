"""GGCN (generator-guided generative ConvNet) on full MNIST (`mnist_local`, 28×28 gray).

`ggcn_cpu`'s recipe moved to 28×28: generator from a 7×7×8 normal code through two learned ×2
blocks (7 → 14 → 28); energy ConvNet 28 → 14 → 7 with a dense top; K = 10 wGCN refinement steps
per iteration (split solver, J = 2, δ = 0.5 on [−1, 1] pixels, noise scale 0.05), Adam 5e-4 /
3e-4, batch 64. Generator-initialised chains make it the cheapest sampler of the zoo. Pilot (Intel
Xeon, 2 vCPUs, load average 8–11): 0.41–0.57 s/iteration; at load ≈ 2.3: 0.28 s. Expected
wall-clock on 2 quiet cores: 15,000 iterations (16 epochs) → ≈ 70 min. After 800 iterations:
varied stroke fragments, not yet digits; FD-MNIST 284 (500 samples; blurred-train baseline 413).

The first full run with energy_lr 5e-4 and no score regulariser diverged at iteration 5,200 (energy
gap 1e12 after a slow rise from ~3 at 3,000; stroke fragments at 4,600, kept as ckpt-4600). Hence
energy_lr 2e-4 and score_reg 1e-3 (the guard mean(f(X)² + f(x̃)²)). The second full run (2026-12-02,
2 vCPUs shared with another training, ≈ 0.31 s/iteration) failed the same way, earlier: the share
of chains whose energy rises along the K = 10 refinement steps (`flow_rises`) was 0 up to
iteration 4,600, 0.80 at 4,800 and 1.00 at 5,400, with the energy gap going 5 → 100 → 1,170; the
samples went from stroke fragments (4,600) to one noisy collapsed shape (6,000). The refinement
step δ = 0.5 with J = 2 implicit iterations stops descending once the energy sharpens, so this
recipe is not yet a preset; a step guard (backtracking δ when the energy rises) or a smaller δ is
the next thing to try.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "GGCN on full MNIST (mnist_local, 28x28 gray)"
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
            image_size=28,
            channels=1,
            seed=0,
            latent_shape=[7, 7, 8],
            gen_filters=64,
            gen_min_filters=16,
            gen_base_size=7,
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
            max_backtracks=3,  # the step guard (docs/ggcn.md): halve δ per chain up to 3× if it would rise
            gen_sigma=0.3,
            latent_steps=0,
            latent_step_size=0.1,
            energy_lr=2e-4,
            gen_lr=3e-4,
            beta_1=0.5,
            beta_2=0.999,
            score_reg=1e-3,
            trace_points=5,
        )
    )
    c.data = ml_collections.ConfigDict(
        dict(name="mnist_local", image_size=28, batch_size=64, split="train", channels=1)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=15000, log_every=200, checkpoint_every=1500, num_samples=64, seed=0)
    )
    return c
