"""Energy Matching on CIFAR-10 (Balcerak et al., arXiv:2504.10612), the official recipe.

From the official repository m1balcerak/EnergyMatching: the network and its flags in
experiments/cifar10/config_multigpu.py (U-Net 128 channels, 2 residual blocks, multipliers
(1, 2, 2, 2), attention at 16×16 with 64-channel heads, dropout 0.1; ViT head with 4×4 patches,
384 wide, 8 layers of 4 heads; output × 1000; 49,985,796 parameters), the optimiser of
experiments/cifar10/train_cifar_multigpu.py (Adam 1.2e-3, β 0.9/0.95, 10k-step linear warm-up
from 0, gradient-norm clip 1.0) and the two README commands:

  warm-up (Algorithm 1):  145,000 steps, lambda_cd 0, n_gibbs 0, EMA 0.9999
  main    (Algorithm 2):  to step 147,000 from the warm-up checkpoint, epsilon_max 0.01,
                          lambda_cd 1e-3, n_gibbs 200, dt_gibbs 0.01, cd_neg_clamp 0.02,
                          cd_trim_fraction 0.1, split_negative, same_temperature_scheduler,
                          EMA 0.99; time_cutoff 1.0 in both.

Both runs are one run here: phase "warmup_then_main" switches to the main phase at step 145,000
(optimizer, learning-rate schedule and EMA continue, as the official resume does). For one
phase alone use --config.model.phase=warmup or main (in a new workdir: a workdir refuses a
changed model config).

Batch: the official command runs 4 processes × batch_size 128 and draws *two* batches per step
(flow and CD); ebm_zoo's batch is global and split into the two, hence 4 × 2 × 128 = 1024.
Sampling: Heun up to T = 3.25 with dt 0.01 (README: FID ≈ 3.3 at T ≈ 3.25).
Needs the TFDS `cifar10` data prepared locally (no download on these machines).
"""

import ml_collections

NET = dict(
    num_channels=128,
    num_res_blocks=2,
    channel_mult=[1, 2, 2, 2],
    attention_resolutions=[16],
    num_heads=4,
    num_head_channels=64,
    dropout=0.1,
    patch_size=4,
    embed_dim=384,
    transformer_nheads=4,
    transformer_nlayers=8,
    output_scale=1000.0,
    energy_clamp=None,
    groups=32,
    unet_time=0.5,
)


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "Energy Matching on CIFAR-10 32x32 (official U-Net+ViT potential, GPU-sized)"
    c.model = ml_collections.ConfigDict(
        dict(
            family="energy_matching",
            image_size=32,
            channels=3,
            seed=0,
            net="unet_vit",
            net_config=dict(NET),
            phase="warmup_then_main",
            main_start_step=145_000,
            time_cutoff=1.0,
            epsilon_max=0.01,
            lambda_cd=1e-3,
            n_gibbs=200,
            dt_gibbs=0.01,
            cd_neg_clamp=0.02,
            cd_trim_fraction=0.1,
            split_negative=True,
            same_temperature_scheduler=True,
            ot_resample=True,
            hflip=True,
            learning_rate=1.2e-3,
            beta_1=0.9,
            beta_2=0.95,
            adam_epsilon=1e-8,
            warmup_steps=10000,
            grad_clip=1.0,
            ema_decay=0.99,
            warmup_ema_decay=0.9999,
            t_end=3.25,
            max_sample_steps=500,
        )
    )
    c.data = ml_collections.ConfigDict(dict(name="cifar10", image_size=32, batch_size=1024, split="train"))
    c.train = ml_collections.ConfigDict(
        dict(steps=147_000, log_every=10, checkpoint_every=5000, num_samples=64, seed=0)
    )
    return c
