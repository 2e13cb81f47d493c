"""Suite "ggcn": the GGCN energy net at 28×28×1 (MNIST size) and 32×32×3 (CIFAR-10 size).

Nets from `configs/ggcn_cifar10.py` (energy net 64 → 128 → 256, 3×3 stride 2, LeakyReLU 0.2,
Dense top; K = 20 wGCN steps, J = 2 split-solver iterations, δ = 0.5, s = 0.05, σ = 1); the 28×28
net starts its generator at a 7×7 code. Batch 100.

- ``sampler``: K wGCN steps (`GGCN.flow`) per call, each J = 2 gradient evaluations; the PyTorch
  twin runs the same split update; TorchEBM (no implicit step) runs K·J explicit Langevin steps,
  the same number of gradient evaluations.
- ``train``: one `GGCN.train_step` (h ~ N(0, I), generator G(h), K flow steps, the energy and
  generator Adam updates). The PyTorch twins run the same iteration with a twin of the generator
  (`langevin.describe_generator`: the transposed convolutions with copied weights, checked on a
  fixed code); `torch.compile` compiles both nets. TorchEBM has no cooperative training: its row
  is reported as skipped.

Quick mode: batch 4, K = 2.
"""

from __future__ import annotations

from ebm_zoo.bench import langevin

BASE_MODEL = dict(
    family="ggcn",
    seed=0,
    gen_filters=512,
    gen_min_filters=64,
    gen_upsample="transpose",
    gen_norm="none",
    gen_activation="leaky_relu",
    score_layers=[[64, 3, 2], [128, 3, 2], [256, 3, 2]],
    score_top="dense",
    score_activation="leaky_relu",
    ref_sigma=1.0,
    step_size=0.5,
    implicit_iters=2,
    noise_scale=0.05,
    solver="split",
    energy_lr=1e-4,
    gen_lr=2e-4,
)
NETS = {
    "ggcn28x1": dict(image_size=28, channels=1, latent_shape=[7, 7, 64]),
    "ggcn32x3": dict(image_size=32, channels=3, latent_shape=[4, 4, 64]),
}


def cases(quick: bool) -> list[dict]:
    batch, steps = (4, 2) if quick else (100, 20)
    out = []
    for net, sizes in NETS.items():
        model = dict(BASE_MODEL, **sizes, num_steps=steps)
        base = dict(suite="ggcn", net=net, kind="ggcn", model=model, batch=batch, steps=steps)
        out += [
            dict(base, case=f"{net}/sampler", task="sampler"),
            dict(base, case=f"{net}/train", task="train"),
        ]
    return out


variants = langevin.variants


setup = langevin.setup
