"""Multi-grid EBM (Gao et al. 2018) on full MNIST (`mnist_local`) at the native 28×28, grids 1 → 7 → 28.

28×28, not padded to 32×32: the grids only need integer factors (`validate_grids`), 1 → 7 → 28
(×7 then ×4) keeps the digits' native pixels, and the data pipeline resizes but does not pad.
The paper's algorithm and optimiser (official noise-free sampler, T = 30, δ = 0.3 on [0, 255],
Adam 0.3 / 0.5 / 0.999 / 1e-8, batch-statistics BatchNorm) with the layer table at a quarter of
the filters (`width=0.25`, as `multigrid_cpu`), batch 64. Pilot (Intel Xeon, 2 vCPUs, load
average ≈ 9, with a test run alongside): 2.4 s/iteration (the single-net CD baseline: 1.0 s); a quiet
machine is ≈ 2× faster (measured on ggcn/short-run), ≈ 0.6–1.2 s. Expected wall-clock on 2 quiet
cores: 4,000 iterations (4.3 epochs) → 40–80 min. `multigrid_cd_mnist` and `multigrid_pcd_mnist` are the baselines at this
budget (same iterations, batch and T).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.description = "Multi-grid EBM (Gao et al. 2018), full MNIST 28x28, grids 1/7/28"
    cfg.model = ml_collections.ConfigDict(
        dict(
            family="multigrid",
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
            grids=[1, 7, 28],
            mode="multigrid",
            sampler="official",
            num_steps=30,
            step_size=0.3,
            ref_sigma=1.0,
            norm="batch",
            width=0.25,
            learning_rate=0.3,
            beta_1=0.5,
            beta_2=0.999,
            epsilon=1e-8,
            pcd_chains=64,
            pcd_mode="sequential",
            pcd_reinit_prob=0.0,
            colour_bank_size=1000,
            jit_compile=False,
        )
    )
    cfg.data = ml_collections.ConfigDict(
        dict(name="mnist_local", image_size=28, batch_size=64, split="train", channels=1)
    )
    cfg.train = ml_collections.ConfigDict(
        dict(steps=4000, log_every=100, checkpoint_every=500, num_samples=64, seed=0)
    )
    return cfg
