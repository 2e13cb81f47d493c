"""Suite "multigrid": the multi-grid 64×64×3 energy net (Gao et al. 2018), batch 100, T = 30.

Both cases use the 64×64 grid's net (64 → 128 → 256 → 512, 5×5 stride 2, batch-statistics
normalisation, LeakyReLU 0.2, Dense 1) and the official noise-free sampler
x ← clip(x + δ²/2 · ∂f/∂x, 0, 255), δ = 0.3 (ebm_zoo.bench.langevin has the update, the variants
and the PyTorch twin):

- ``sampler``: T steps of `MultiGrid.run_sampler` per call;
- ``train``: one `MultiGrid.train_step` of the single-grid CD model (grids 1/64, mode "cd":
  chains start at the data batch, T steps, loss mean f(x̃) − mean f(x), Adam lr 0.3, β 0.5/0.999).
  This is the 64×64 grid's share of a multi-grid iteration, and exactly what the PyTorch twin and
  TorchEBM's contrastive divergence compute (a faithful 4-grid iteration also samples and trains
  the 4×4 and 16×16 nets).

Quick mode: batch 4, T = 2.
"""

from __future__ import annotations

from ebm_zoo.bench import langevin

MODEL = dict(
    family="multigrid",
    image_size=64,
    channels=3,
    seed=0,
    grids=[1, 64],
    mode="cd",
    sampler="official",
    step_size=0.3,
    norm="batch",
    width=1.0,
    learning_rate=0.3,
    beta_1=0.5,
    beta_2=0.999,
    epsilon=1e-8,
)


def cases(quick: bool) -> list[dict]:
    batch, steps = (4, 2) if quick else (100, 30)
    base = dict(
        suite="multigrid",
        net="multigrid64x3",
        kind="multigrid",
        model=dict(MODEL, num_steps=steps),
        batch=batch,
        steps=steps,
    )
    return [
        dict(base, case="multigrid64x3/sampler", task="sampler"),
        dict(base, case="multigrid64x3/train", task="train"),
    ]


variants = langevin.variants
setup = langevin.setup
