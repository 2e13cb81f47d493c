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
2 vCPUs shared with another training, ≈ 0.31 s/iteration) failed the same way, earlier: the
fraction of the K = 10 refinement steps that raised the batch-mean energy (`flow_rises`, TensorBoard,
200-iteration means) was 0 up to iteration 4,000, then 0.15 (4,200), 0.64 (4,400), 0.80 (4,600),
0.95 (4,800), 1.00 (5,200), with the energy gap 14 → 70 → 102 → 319 → 1,173; the samples went
from stroke fragments (4,600, speckled backgrounds) to one noisy collapsed shape (6,000). Once the
energy sharpens, the deterministic part of a δ = 0.5 step (J = 2) overshoots and raises the energy.

Hence `max_backtracks=3`: the flow's step guard (docs/ggcn.md, ebm_zoo.sampling.langevin) halves δ
per chain, up to 3 times, while a step's drift would raise that chain's energy; logged as
guard_fires / guard_backtracks / guard_rejects. On the failed run's ckpt-6000 it turns the
refinement from +796 mean energy (all 256 chains end higher, flow_rises 0.73) into −153 (none
higher, flow_rises 0); resuming that run from ckpt-4600 with it on for 400 iterations kept
flow_rises at 0 and the gap at 47 → 121 (unguarded: 319 at 4,800, 891 at 5,000), but the guard
fires on ~99 % of chain-steps with ~2.5 halvings and the gap still rises, so the recipe is still
not a preset; a smaller δ (~0.1–0.15) with the guard kept on is the next thing to try. Figures,
commands and load: docs/ggcn.md ("The flow's step guard").

Third run (2026-12-02): δ = 0.15 with the guard on and score_reg 1e-2 collapsed at once: the
regulariser caps |f| near 1/(2·score_reg) = 50, far below the Gaussian reference term
‖x‖²/2σ² ≈ 320 of an MNIST image (background −1), so the model stayed the reference N(0, I):
energy gap −250 and flow_rises 1.0 from the start, the guard never fired, and every grid up to
iteration 3,000 was the same flat grey image. Fourth run: score_reg back to 1e-3 (the second run's,
which learned stroke fragments by 4,600) with δ = 0.15 and the guard: the generator collapsed,
every sample of the grids at 1,000 and 2,000 the same dim blob on black, energy gap 890 → 980 by
iteration 1,400 (flow_rises 0, guard never fired): the K = 10 refinement steps of τ = δ²/2 = 0.011
barely move x̃ away from G(h), so the generator learns almost nothing from them while the energy
net separates data from G(h) at will. Fifth run: δ = 0.3 (τ = 0.045) with the guard and
score_reg 1e-3 collapsed too (by 1,600: one vertical-stripe pattern in every sample, the guard
firing on 40 % of chain-steps). Of the five, only the first recipe ever drew varied digit-like
strokes (ckpt-4600 of the first run: varied stroke fragments, a few readable digits). Sixth run:
the first run's recipe (energy_lr 5e-4, no score regulariser, δ = 0.5) with the step guard on,
6,000 iterations (about energy_matching_mnist's 3,347 training CPU-s at 0.3 s/iteration on 2
cores), a checkpoint every 500 kept: the equal-budget row of docs/energy_matching.md is the
checkpoint nearest that budget, or the last one before a divergence.

The sixth run (2026-12-02, 2,024 s wall / 2,376 CPU-s for 6,000 iterations on the 2 cores, 0.40
CPU-s per iteration) diverged again near its end: energy gap 5.4 (iteration 4,600), 11.8
(5,000), 92 (5,600), 2,585 (6,000), with the guard firing on 0.5 %, 17 %, 96 %, 99.9 % of
chain-steps; the guard keeps each refinement from raising the energy but cannot stop the energy
net from sharpening. The shipped `ggcn_mnist` preset is its checkpoint 4,600 (1,513 CPU-s,
26 min), the last before the divergence: varied stroke fragments and some readable digits;
FD-MNIST 218, classifier score 3.82, 8.33 effective classes. Reproduce it with
    python tools/train.py --model=ggcn_mnist --workdir=RUN
    python tools/eval.py --workdir=RUN --checkpoint=4600 --protocol=mnist --out=REPORTS
    python tools/eval.py --workdir=RUN --checkpoint=4600 --protocol=mnist_ood --out=REPORTS
    python tools/export.py --workdir=RUN --checkpoint=4600 --preset=ggcn_mnist --reports=REPORTS
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
            energy_lr=5e-4,
            gen_lr=3e-4,
            beta_1=0.5,
            beta_2=0.999,
            score_reg=0.0,
            trace_points=5,
        )
    )
    c.data = ml_collections.ConfigDict(
        dict(name="mnist_local", image_size=28, batch_size=64, split="train", channels=1)
    )
    c.train = ml_collections.ConfigDict(
        dict(steps=6000, log_every=200, checkpoint_every=500, max_to_keep=20, num_samples=64, seed=0)
    )
    return c
