"""Energy Matching on MNIST 28×28 (shipped `mnist_local`), sized for 2 CPU cores.

The official algorithm (flow matching on −∇V with exact minibatch OT, then + contrastive
divergence with the ε(t) temperature; docs/energy_matching.md) with the official MNIST potential
thinned to conv stages (32, 64) and a 256-wide MLP, batch 2 × 64 (flow + CD), Adam 1e-4 with a
500-step warm-up, and a coarser time step dt_gibbs = 0.05 for the negatives and the sampler
(n_gibbs = 40 sweeps t = 0 … 2 as the official 200 × 0.01 does). EMA 0.999 (warm-up) / 0.99.

`--model=energy_matching`: 4,000 warm-up steps, then 500 main-phase steps in the same run
(phase "warmup_then_main"); measured ≈ 0.23 s per warm-up step and ≈ 5.6 s per main step on
the shared 2-core machine (docs/energy_matching.md).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "Energy Matching on MNIST 28x28 (CPU-sized, shipped data)"
    c.model = ml_collections.ConfigDict(
        dict(
            family="energy_matching",
            image_size=28,
            channels=1,
            seed=0,
            net="conv_mlp",
            net_config=dict(widths=[32, 64], mlp_width=256, dropout=0.0),
            phase="warmup_then_main",
            main_start_step=4000,
            time_cutoff=1.0,
            epsilon_max=0.01,
            lambda_cd=1e-3,
            n_gibbs=40,
            dt_gibbs=0.05,
            cd_neg_clamp=0.02,
            cd_trim_fraction=0.1,
            split_negative=True,
            same_temperature_scheduler=True,
            ot_resample=True,
            hflip=False,
            learning_rate=1e-4,
            beta_1=0.9,
            beta_2=0.999,
            adam_epsilon=1e-8,
            warmup_steps=500,
            grad_clip=1.0,
            ema_decay=0.99,
            warmup_ema_decay=0.999,
            t_end=3.25,
            max_sample_steps=200,
        )
    )
    c.data = ml_collections.ConfigDict(dict(name="mnist_local", image_size=28, batch_size=128, split="train"))
    c.train = ml_collections.ConfigDict(
        dict(steps=4500, log_every=50, checkpoint_every=500, num_samples=64, seed=0)
    )
    return c
