"""Benchmark suite `multigrid`: the faithful 64×64 multi-grid EBM on this machine, TF vs PyTorch.

Rows (medians over repeats, in one process):
- `tf_train_iter`: one learning iteration of `multigrid_celeba` (grids 1/4/16/64, batch 100,
  T = 30, batch-statistics BN, official sampler) — quick mode: batch 8, T = 3.
- `tf_sampler_64` / `tf_sampler_64_xla`: T official sampler steps under the 64×64 net, compiled
  tf.function without / with XLA (the XLA row in quick mode only: ~10× slower than plain
  tf.function there, which is why the model's `jit_compile` defaults to False); Langevin steps/s and achieved GFLOP/s (a step ≈ forward +
  input-gradient ≈ 2 × forward FLOPs) as a fraction of the measured matmul rate.
- `torch_sampler_64_t<threads>`: the same net (conv → BatchNorm in training mode → LeakyReLU(0.2), Dense 1)
  and the same update x ← clip(x + δ²/2·∂f/∂x, 0, 255) in PyTorch (CPU), and the TF/PyTorch ratio
  of the median times (> 1: TF slower). PyTorch runs in a subprocess of the same bench run so
  that its threads do not compete with TF's, once with 1 thread and once with one per core.
"""

from __future__ import annotations

import os

import numpy as np

from ebm_zoo.bench import median, time_fn

STEP_SIZE = 0.3


def forward_flops(layers, size: int, channels: int) -> float:
    """Multiply-adds × 2 of one forward pass of a conv stack (+ Dense 1) on one image."""
    flops, h, c = 0.0, size, channels
    for filters, kernel, stride in layers:
        h = -(-h // stride)
        flops += 2.0 * h * h * kernel * kernel * c * filters
        c = filters
    return flops + 2.0 * h * h * c


def _tf_rows(quick: bool, matmul_gflops: float, batch: int, steps: int, repeats: int) -> list[dict]:
    import tensorflow as tf

    from ebm_zoo import config as config_lib
    from ebm_zoo.models import build_model
    from ebm_zoo.nets.multigrid_nets import layer_spec

    cfg = config_lib.get_config("multigrid_celeba")
    cfg.model.num_steps = steps
    model = build_model(cfg.model)
    model.compile()
    model.build_all()
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((batch, 64, 64, 3)).astype(np.float32))
    rows = []

    train = tf.function(model.train_step)
    t = median(time_fn(lambda: train(images)["loss"].numpy(), repeats=repeats, warmup=1))
    rows.append({"name": "tf_train_iter", "batch": batch, "T": steps, "grids": "1/4/16/64", "median_s": t})

    x0 = tf.constant(rng.random((batch, 64, 64, 3)).astype(np.float32) * 255.0)
    seed = tf.constant([0, 0])
    fwd = forward_flops(layer_spec(64), 64, 3)
    for xla in (False, True) if quick else (False,):
        fn = tf.function(lambda x: model.run_sampler(2, x, seed).samples, jit_compile=xla)
        name = "tf_sampler_64_xla" if xla else "tf_sampler_64"
        try:
            t = median(time_fn(lambda f=fn: f(x0).numpy(), repeats=repeats, warmup=1))
        except Exception as e:  # XLA may not compile the loop on this build: report, don't fail
            rows.append({"name": name, "error": f"{type(e).__name__}: {str(e)[:120]}"})
            continue
        gflops = 2.0 * fwd * batch * steps / t / 1e9
        rows.append(
            {
                "name": name,
                "batch": batch,
                "T": steps,
                "median_s": t,
                "steps_per_s": steps / t,
                "gflops": gflops,
                "frac_of_matmul": gflops / matmul_gflops,
            }
        )
    return rows


def _torch_sampler(batch: int, steps: int, repeats: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    from ebm_zoo.nets.multigrid_nets import layer_spec

    layers, c, size = [], 3, 64
    for filters, kernel, stride in layer_spec(64):
        layers += [
            torch.nn.Conv2d(c, filters, kernel, stride, padding=kernel // 2),
            torch.nn.BatchNorm2d(filters),
            torch.nn.LeakyReLU(0.2),
        ]
        c, size = filters, -(-size // stride)
    net = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(c * size * size, 1))
    net.train()  # batch statistics, as the TF model
    for p in net.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(batch, 3, 64, 64, generator=gen) * 255.0

    def run():
        x = x0.clone()
        for _ in range(steps):
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(net(x).sum(), x)
            x = (x.detach() + 0.5 * STEP_SIZE**2 * grad).clamp_(0.0, 255.0)
        return float(x[0, 0, 0, 0])

    return median(time_fn(run, repeats=repeats, warmup=1))


def _torch_sampler_subprocess(batch: int, steps: int, repeats: int, threads: int) -> float | None:
    """Runs `_torch_sampler` with `threads` OpenMP threads in a fresh interpreter: in the TF
    process PyTorch's threads compete with TF's thread pools (measured ~10× slower there)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, torch; from ebm_zoo.bench.multigrid import _torch_sampler; "
        f"torch.set_num_threads({threads}); print(json.dumps(_torch_sampler({batch}, {steps}, {repeats})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool, matmul_gflops: float) -> list[dict]:
    batch, steps, repeats = (8, 3, 3) if quick else (100, 30, 2)
    rows = _tf_rows(quick, matmul_gflops, batch, steps, repeats)
    tf_row = next(r for r in rows if r["name"] == "tf_sampler_64")
    # PyTorch with 1 and with all cores' OpenMP threads: on a loaded machine OpenMP's spinning
    # barriers make 2 threads slower than 1 (measured 14.3 s vs 2.4 s at load average 17).
    for threads in sorted({1, os.cpu_count() or 1}):
        try:
            t_torch = _torch_sampler_subprocess(batch, steps, repeats, threads)
        except Exception as e:  # torch missing or failing: report, don't fail the suite
            rows.append(
                {"name": f"torch_sampler_64_t{threads}", "error": f"{type(e).__name__}: {str(e)[:120]}"}
            )
            continue
        if t_torch is None:
            rows.append({"name": f"torch_sampler_64_t{threads}", "error": "torch not installed"})
            continue
        rows.append(
            {
                "name": f"torch_sampler_64_t{threads}",
                "batch": batch,
                "T": steps,
                "threads": threads,
                "median_s": t_torch,
                "steps_per_s": steps / t_torch,
                "tf_over_torch": tf_row["median_s"] / t_torch,
            }
        )
    return rows
