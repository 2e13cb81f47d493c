"""Multi-grid EBM on shipped data, sized for 2 CPU cores: LFW faces at 16×16 gray, grids 1 → 4 → 16.

The default of `python tools/train.py --model=multigrid`. Same algorithm and optimiser as the paper
(official noise-free sampler, T = 30, δ = 0.3, Adam 0.3 / 0.5 / 0.999 / 1e-8, batch-statistics
BatchNorm); the nets are the paper's layer table with a quarter of the filters (`width=0.25`),
and the data are the 90 training faces of scikit-image's `lfw_subset` resized to 16×16.
About 0.5 s per iteration on 2 cores: 300 iterations (100 epochs) take ~3 minutes.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.description = "Multi-grid EBM (Gao et al. 2018), LFW faces 16×16 gray, grids 1/4/16, CPU-sized"
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
            image_size=16,
            channels=1,
            seed=0,
            grids=[1, 4, 16],
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
            pcd_chains=30,
            pcd_mode="sequential",
            pcd_reinit_prob=0.0,
            colour_bank_size=1000,
            jit_compile=False,
        )
    )
    cfg.data = ml_collections.ConfigDict(
        dict(name="lfw_faces", image_size=16, batch_size=30, split="train", channels=1)
    )
    cfg.train = ml_collections.ConfigDict(
        dict(steps=300, log_every=50, checkpoint_every=100, num_samples=36, seed=0)
    )
    return cfg
