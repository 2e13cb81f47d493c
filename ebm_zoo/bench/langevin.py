r"""Suite "langevin": Langevin steps per second of the descriptor's sampler, TF vs PyTorch.

For each model config (a texture and an object descriptor, below) and batch, T steps of

    x ← clip(x − (δ²/2)·(x/σ² − ∂f/∂x) + δ·z),        z ~ N(0, I)

are timed as:

- ``tf_compiled``: `Descriptor.run_langevin` inside one `tf.function` (a `tf.while_loop`);
- ``tf_step_fn``:  one step in a `tf.function`, called T times from Python (separates the
  while_loop from the per-call dispatch);
- ``tf_eager``:    T eager `GradientTape` steps from Python (no `tf.function`);
- ``tf_xla``:      the ``tf_compiled`` function with `jit_compile=True`;
- ``torch``:       the same network in PyTorch (weights copied from TF, TF's asymmetric 'same'
  padding reproduced exactly) and the same update, `torch.autograd.grad` per step, with
  `torch.set_num_threads` = the cores TF uses; ``torch_cl`` is the same in channels-last layout.

FLOP counting rule (analytic, per step): a Langevin step needs the forward pass and the backward
pass to the *input* only (no weight gradients). The input gradient of a convolution is a
transposed convolution with the same multiply-adds as the forward one, so

    FLOPs/step = batch × 2 (forward + input gradient) × 2 (FLOPs per multiply-add) × MACs(f),

with MACs(f) = Σ_conv H_out·W_out·C_out·k²·C_in + the top (1×1 conv or Dense). Activations, the
noise draw, the update and the clipping are elementwise and not counted. Achieved GFLOP/s is
compared with the machine's measured matmul rate (`matmul_gflops`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from ebm_zoo.bench import median, time_fn

# TensorFlow and PyTorch are imported inside the functions that use them, so the PyTorch worker
# subprocess (`torch_in_subprocess`) starts without loading TensorFlow.

#: Benchmarked model configs: Descriptor constructor kwargs plus (batch, T) per mode.
CONFIGS = {
    # The CPU texture demo (Descriptor defaults: the texture net of Xie et al. 2016).
    "texture64x1": dict(
        model=dict(image_size=64, channels=1, mode="texture", layers=[[64, 7, 2], [64, 5, 2], [64, 3, 1]]),
        full=dict(batch=16, steps=30, slow_steps=30, torch_steps=10, repeats=5),
        quick=dict(batch=8, steps=5, slow_steps=3, torch_steps=2, repeats=2),
        variants=(
            "tf_compiled",
            "tf_step_fn",
            "tf_eager",
            "tf_xla",
            "torch",
            "torch_passive",
            "torch_passive_cl",
        ),
    ),
    # An object net of the size of the multi-grid 64×64 grid net (without its normalisation).
    "object64x3": dict(
        model=dict(
            image_size=64,
            channels=3,
            mode="object",
            activation="leaky_relu",
            layers=[[64, 5, 2], [128, 5, 2], [256, 5, 2], [512, 5, 2]],
        ),
        full=dict(batch=100, steps=30, slow_steps=5, torch_steps=3, repeats=3),
        quick=dict(batch=4, steps=3, slow_steps=2, torch_steps=2, repeats=2),
        variants=("tf_compiled", "tf_eager", "tf_xla", "torch", "torch_passive", "torch_passive_cl"),
    ),
}


def tf_threads() -> int:
    """Threads of TF's intra-op pool (its default 0 means one per core)."""
    import tensorflow as tf

    n = tf.config.threading.get_intra_op_parallelism_threads()
    return n if n > 0 else (os.cpu_count() or 1)


# ------------------------------------------------------------------------------------------
# FLOPs.
def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF 'same' padding along one axis: (output size, pad before, pad after).

    TF puts the odd pixel of an odd total padding *after* (bottom/right), so a stride-2 'same'
    convolution with an even kernel-minus-stride is padded asymmetrically.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def forward_macs(layers, image_size: int, channels: int, top: str) -> int:
    """Multiply-adds of one forward pass f(x) of one image ('same' padding)."""
    size, c, macs = image_size, channels, 0
    for filters, kernel, stride in layers:
        size = same_padding(size, kernel, stride)[0]
        macs += size * size * filters * kernel * kernel * c
        c = filters
    macs += size * size * c  # 1×1 conv to one channel ("sum") or Dense(1) on the flat map
    return macs


def step_flops(layers, image_size: int, channels: int, top: str, batch: int) -> float:
    """FLOPs of one Langevin step: forward + input gradient (see the module docstring)."""
    return 4.0 * batch * forward_macs(layers, image_size, channels, top)


# ------------------------------------------------------------------------------------------
# TF variants.
def build_descriptor(model_kwargs: dict):
    from ebm_zoo.models.descriptor import Descriptor

    d = Descriptor(**model_kwargs)
    d.build_all()
    return d


def tf_initial_state(d, batch: int, seed: int = 0):
    import tensorflow as tf

    return d.chain_start(batch, tf.constant([seed, 7]), size=d.image_size)


def tf_compiled_fn(d, steps: int, jit_compile: bool = False):
    """T steps of `d.run_langevin` (a while_loop) in one tf.function: x0 → samples."""
    import tensorflow as tf

    run = tf.function(
        lambda x0: d.run_langevin(x0, tf.constant([1, 2]), steps).samples, jit_compile=jit_compile
    )
    return run


def _step(d, x, seed, t):
    import tensorflow as tf

    from ebm_zoo.sampling.langevin import langevin_step

    z = tf.random.stateless_normal(tf.shape(x), tf.random.experimental.stateless_fold_in(seed, t))
    x_next, _, _ = langevin_step(d._energy, x, d.noise_scale * z, step_size=d.step_size, clip=d._clip())
    return x_next


def tf_eager_loop(d, x0, steps: int):
    import tensorflow as tf

    seed = tf.constant([1, 2])
    x = x0
    for t in range(steps):
        x = _step(d, x, seed, t)
    return x


def tf_step_fn_loop(d, steps: int):
    import tensorflow as tf

    step = tf.function(lambda x, t: _step(d, x, tf.constant([1, 2]), t))

    def run(x0):
        x = x0
        for t in range(steps):
            x = step(x, tf.constant(t))
        return x

    return run


# ------------------------------------------------------------------------------------------
# PyTorch twin of EnergyConvNet.
def make_torch_net(layers, channels: int, image_size: int, top: str, activation: str):
    """A `torch.nn.Module` computing the same f as `EnergyConvNet` (NCHW input).

    Stride-2 'same' convolutions are padded exactly as TF pads them (asymmetric `F.pad` before an
    unpadded conv); symmetric paddings use the conv's own `padding`. The Dense top reads the
    flattened map in TF's (H, W, C) order through a permuted weight (see `copy_tf_weights`).
    """
    import torch
    import torch.nn.functional as F

    acts = {
        "relu": F.relu,
        "leaky_relu": lambda h: F.leaky_relu(h, 0.2),
        "elu": F.elu,
        "swish": F.silu,
        "softplus": F.softplus,
    }

    class TorchEnergyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleList()
            self.pads = []
            size, c = image_size, channels
            for filters, kernel, stride in layers:
                size, before, after = same_padding(size, kernel, stride)
                sym = before == after
                self.pads.append(None if sym else (before, after, before, after))
                self.convs.append(torch.nn.Conv2d(c, filters, kernel, stride, padding=before if sym else 0))
                c = filters
            self.top = top
            self.act = acts[activation]
            self.head = torch.nn.Conv2d(c, 1, 1) if top == "sum" else torch.nn.Linear(size * size * c, 1)

        def forward(self, x):
            h = x
            for conv, pad in zip(self.convs, self.pads):
                if pad is not None:
                    h = F.pad(h, pad)
                h = self.act(conv(h))
            if self.top == "sum":
                return self.head(h).sum(dim=(1, 2, 3))
            return self.head(h.flatten(1))[:, 0]

    return TorchEnergyNet()


def copy_tf_weights(tf_net, torch_net) -> None:
    """Copies an `EnergyConvNet`'s weights into its `make_torch_net` twin."""
    import torch

    with torch.no_grad():
        for conv_tf, conv_pt in zip(tf_net.convs, torch_net.convs):
            k, b = (v.numpy() for v in conv_tf.weights)
            conv_pt.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))))
            conv_pt.bias.copy_(torch.from_numpy(b))
        k, b = (v.numpy() for v in tf_net.head.weights)
        if tf_net.top == "sum":  # [1, 1, C, 1] → [1, C, 1, 1]
            w = k.transpose(3, 2, 0, 1)
        else:  # [H·W·C, 1] in TF's (H, W, C) flattening → [1, C·H·W]
            c = conv_pt.out_channels
            hw = int(round(math.sqrt(k.shape[0] // c)))
            w = k[:, 0].reshape(hw, hw, c).transpose(2, 0, 1).reshape(1, -1)
        torch_net.head.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
        torch_net.head.bias.copy_(torch.from_numpy(b))


def torch_langevin(
    net, x, steps: int, step_size: float, ref_sigma: float, clip, generator, noise_scale: float = 1.0
):
    """T steps of the descriptor's Langevin update with `torch.autograd.grad` (NCHW x)."""
    import torch

    tau = 0.5 * step_size**2
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        (df,) = torch.autograd.grad(net(x).sum(), x)
        with torch.no_grad():
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x - tau * (x / ref_sigma**2 - df) + (noise_scale * step_size) * z
            if clip is not None:
                x = x.clamp_(clip[0], clip[1])
    return x.detach()


def torch_run(net, x0, steps: int, step_size: float, ref_sigma: float, clip, seed: int = 0):
    """`torch_langevin` with the net's weights frozen (only ∂f/∂x is computed, as in TF's graph)."""
    import torch

    net.requires_grad_(False)
    return torch_langevin(net, x0, steps, step_size, ref_sigma, clip, torch.Generator().manual_seed(seed))


#: Environment of the PyTorch worker: OpenMP threads sleep at barriers instead of spinning.
PASSIVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def torch_in_subprocess(key: str, quick: bool, variants, threads: int, timeout: float = 3600) -> dict:
    """Times PyTorch variants in a fresh process started with `PASSIVE_ENV`.

    OpenMP reads OMP_WAIT_POLICY when the library loads, i.e. at `import torch`, which in a
    tools/bench.py run has already happened; hence the subprocess. The worker does not import
    TensorFlow; its net has PyTorch's default initial weights (the timing does not depend on
    the values; tests/test_bench.py checks the function equals TF's with copied weights).
    Returns {variant: {"times": [...]} or {"skipped": reason}}.
    """
    spec = json.dumps({"key": key, "quick": quick, "variants": list(variants), "threads": threads})
    env = {**os.environ, **PASSIVE_ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "ebm_zoo.bench.langevin", "--torch-worker", spec],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"torch worker failed (rc={proc.returncode}): {proc.stderr.strip()[-300:]}")
    return json.loads(lines[-1])


def _torch_worker(spec: dict) -> dict:
    try:
        import torch
    except ImportError as e:
        return {v: {"skipped": f"torch not importable ({e})"} for v in spec["variants"]}
    cfg = CONFIGS[spec["key"]]
    model, sizes = cfg["model"], cfg["quick" if spec["quick"] else "full"]
    torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(0)
    layers, channels, size = model["layers"], model["channels"], model["image_size"]
    top = "sum" if model["mode"] == "texture" else "dense"
    net = make_torch_net(layers, channels, size, top, model.get("activation", "relu"))
    step_size, ref_sigma, clip = 0.3, 1.0, (-127.5, 127.5)  # Descriptor defaults
    x0 = (ref_sigma * torch.randn(sizes["batch"], channels, size, size)).clamp_(*clip)
    steps, out = sizes["slow_steps"], {}
    for v in spec["variants"]:
        m, x = net, x0
        if v.endswith("_cl"):  # a channels-last copy (Module.to converts in place)
            m = make_torch_net(layers, channels, size, top, model.get("activation", "relu"))
            m.load_state_dict(net.state_dict())
            m = m.to(memory_format=torch.channels_last)
            x = x0.contiguous(memory_format=torch.channels_last)
        run_steps = lambda n, m=m, x=x: torch_run(m, x, n, step_size, ref_sigma, clip)  # noqa: E731
        times, cpu_s = time_steps(run_steps, steps, sizes["repeats"])
        out[v] = {"times": times, "cpu_s": cpu_s}
    return out


def measure(fn, repeats: int, warmup_fn=None) -> tuple[list[float], float]:
    """(`time_fn` wall times of `fn`, mean process CPU seconds per call) after one warm-up call.

    On an oversubscribed host wall time mostly measures the scheduler; CPU time (all threads of
    this process) measures the work done, but also counts spin-waiting threads.
    """
    (warmup_fn or fn)()
    c0 = time.process_time()
    times = time_fn(fn, repeats, warmup=0)
    return times, (time.process_time() - c0) / repeats


def time_steps(run_steps, steps: int, repeats: int) -> tuple[list[float], float]:
    """`measure` of `run_steps(steps)` for Python-loop variants, warmed up by a 1-step call
    (which builds the kernels' caches; nothing there is traced per step count)."""
    return measure(lambda: run_steps(steps), repeats, warmup_fn=lambda: run_steps(1))


# ------------------------------------------------------------------------------------------
# Rows.
def _row(name, batch, steps, times, flops, matmul_gflops, **extra):
    t = median(times)
    gflops = flops * steps / t / 1e9
    row = {
        "name": name,
        "batch": batch,
        "steps": steps,
        "median_s": t,
        "steps_per_s": steps / t,
        "gflops": gflops,
        "frac_of_matmul": gflops / matmul_gflops if matmul_gflops else float("nan"),
        "load1": round(os.getloadavg()[0], 1),  # 1-min load average after the timing (shared hosts)
        **extra,
    }
    if "cpu_s" in row:  # CPU seconds per call → achieved GFLOP per CPU-second (per busy core)
        row["gflops_per_cpu_s"] = flops * steps / row["cpu_s"] / 1e9 if row["cpu_s"] > 0 else float("nan")
    return row


def bench_config(key: str, quick: bool, matmul_gflops: float, variants=None) -> list[dict]:
    """Rows of one model config: one per timed variant, then the ratios.

    The slow variants (eager, XLA, PyTorch) run `slow_steps` ≤ T steps per call (in-process
    PyTorch `torch_steps`) to keep the full suite short; steps/s is per step, and each row states
    its own `steps`.
    """
    cfg = CONFIGS[key]
    sizes = cfg["quick" if quick else "full"]
    batch, repeats = sizes["batch"], sizes["repeats"]
    variants = cfg["variants"] if variants is None else variants
    d = build_descriptor(cfg["model"])
    top = d.net.top
    flops = step_flops(d.layer_spec, d.image_size, d.channels, top, batch)
    x0 = tf_initial_state(d, batch)
    rows, by_name = [], {}

    def timed(name, steps, fn, measured=None, **extra):
        times, cpu_s = measure(fn, repeats) if measured is None else measured
        by_name[name] = _row(f"{key}/{name}", batch, steps, times, flops, matmul_gflops, cpu_s=cpu_s, **extra)
        rows.append(by_name[name])

    def skipped(name, why):
        rows.append({"name": f"{key}/{name}", "skipped": why[:200]})

    steps, slow = sizes["steps"], sizes["slow_steps"]
    if "tf_compiled" in variants:
        compiled = tf_compiled_fn(d, steps)
        timed("tf_compiled", steps, lambda: compiled(x0).numpy())
    if "tf_step_fn" in variants:
        step_loop = tf_step_fn_loop(d, steps)
        timed("tf_step_fn", steps, lambda: step_loop(x0).numpy())
    if "tf_eager" in variants:
        eager = time_steps(lambda n: tf_eager_loop(d, x0, n).numpy(), slow, repeats)
        timed("tf_eager", slow, None, measured=eager)
    if "tf_xla" in variants:
        try:
            xla_fn = tf_compiled_fn(d, slow, jit_compile=True)
            timed("tf_xla", slow, lambda: xla_fn(x0).numpy())
        except Exception as e:  # report and continue
            skipped("tf_xla", f"{type(e).__name__}: {e}")

    threads = tf_threads()
    if "torch" in variants:
        try:
            import torch
        except ImportError as e:
            skipped("torch", f"torch not importable ({e})")
        else:
            net = make_torch_net(d.layer_spec, d.channels, d.image_size, top, d.activation)
            copy_tf_weights(d.net, net)
            x0_pt = torch.from_numpy(np.ascontiguousarray(x0.numpy().transpose(0, 3, 1, 2)))
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                run_steps = lambda n: torch_run(net, x0_pt, n, d.step_size, d.ref_sigma, d._clip())  # noqa: E731
                measured = time_steps(run_steps, sizes["torch_steps"], repeats)
            finally:
                torch.set_num_threads(before)
            timed("torch", sizes["torch_steps"], None, measured=measured, threads=threads)
    passive = [v for v in ("torch_passive", "torch_passive_cl") if v in variants]
    if passive:
        try:
            res = torch_in_subprocess(key, quick, passive, threads)
        except (RuntimeError, subprocess.SubprocessError, ValueError) as e:
            for v in passive:
                skipped(v, str(e))
        else:
            for v in passive:
                if "skipped" in res[v]:
                    skipped(v, res[v]["skipped"])
                    continue
                by_name[v] = _row(
                    f"{key}/{v}",
                    batch,
                    slow,
                    res[v]["times"],
                    flops,
                    matmul_gflops,
                    cpu_s=res[v]["cpu_s"],
                    threads=threads,
                    env="OMP_WAIT_POLICY=PASSIVE",
                )
                rows.append(by_name[v])

    def ratio(name, num, den, **extra):
        if num in by_name and den in by_name:
            r = by_name[num]["steps_per_s"] / by_name[den]["steps_per_s"]
            rows.append({"name": f"{key}/{name}", "ratio": r, "of": f"{num}/{den}", **extra})

    ratio("compiled_vs_eager", "tf_compiled", "tf_eager")
    ratio("compiled_vs_step_fn", "tf_compiled", "tf_step_fn")
    ratio("xla_vs_compiled", "tf_xla", "tf_compiled")
    ratio("tf_vs_torch", "tf_compiled", "torch")
    ratio("tf_vs_torch_passive", "tf_compiled", "torch_passive")
    best_torch = max(
        (v for v in ("torch", "torch_passive", "torch_passive_cl") if v in by_name),
        key=lambda v: by_name[v]["steps_per_s"],
        default=None,
    )
    if best_torch not in (None, "torch"):
        ratio("tf_vs_best_torch", "tf_compiled", best_torch)
    return rows


def run(quick: bool, matmul_gflops: float) -> list[dict]:
    rows = []
    for key in CONFIGS:
        rows.extend(bench_config(key, quick, matmul_gflops))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--torch-worker":
        print(json.dumps(_torch_worker(json.loads(sys.argv[2]))))
    else:
        sys.exit(
            "usage: python -m ebm_zoo.bench.langevin --torch-worker '<json spec>' (see torch_in_subprocess)"
        )
