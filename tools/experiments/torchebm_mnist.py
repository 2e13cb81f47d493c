"""The TorchEBM peer row of the MNIST benchmark: the short-run EBM trained with TorchEBM at equal CPU budget.

    python tools/experiments/torchebm_mnist.py --budget_from=/work/runs_mnist/short_run_mnist
    python tools/experiments/torchebm_mnist.py --cpu_seconds=20000
    python tools/experiments/torchebm_mnist.py --cpu_seconds=5 --num_samples=200 --out=/tmp/peer.json  # smoke

Needs the `bench` extra (`pip install -e .[bench]`: torch, torchebm). Trains the network of
configs/short_run_mnist.py with TorchEBM's `ContrastiveDivergence` loss (chains from uniform
noise, or persistent with its replay buffer if the config has one) and `LangevinDynamics` sampler on the 60,000 MNIST train images until the process
has used --cpu_seconds of CPU time (time.process_time: every thread, both cores counted — the
measure tools/train.py records in timing.json), then draws fresh samples (K Langevin steps from
uniform noise, as `model.sample()` does) and scores them with ebm_zoo's MNIST protocol
(`ebm_zoo.metrics.mnist_protocol.run_mnist_protocol`: chunks of 250 samples seeded
seed * 1,000,000 + i, 5,000 samples vs the 10,000 test images). Writes --out (default
docs/benchmarks/torchebm_mnist.json) and the 8x8 sheet + report in --sheets_dir.

Same as ebm_zoo's short_run_mnist (configs/short_run_mnist.py):
  * net f: conv 3x3/1 (32) → conv 4x4/2 (64) → conv 4x4/2 (128), swish, "same" padding (1 px,
    which equals TF's for these sizes), flatten, linear → f(x); energy E = −f; Glorot-uniform
    weights and zero biases (Keras' defaults; PyTorch's would differ);
  * pixels in [−1, 1]; batch 64; Adam lr 1e-4, β1 0.5, ε 1e-8;
  * Langevin: K = 40 steps, x ← x − 1·∇E(x) + 0.005·z (TorchEBM: step_size Δt = 1,
    noise_scale σ = 0.005/√2, its update is x − Δt∇E + √(2σ²Δt) z), clamped to [−1, 1];
  * loss mean E(data) − mean E(negatives) (TorchEBM's CD loss with energy_reg_weight = 0);
  * the chains' start, as the config says:
    - replay_capacity = 0 (short_run_mnist since 2026-12-02): every iteration's chains start
      from uniform noise in [−1, 1], as in `model.sample()`. TorchEBM's non-persistent CD
      would start them at the data batch, so its `get_start_points` is overridden (sampler and
      loss stay TorchEBM's);
    - replay_capacity > 0: TorchEBM's persistent CD with a buffer of that many chains, started
      from uniform noise in [−1, 1] (written into TorchEBM's buffer; TorchEBM itself starts it
      from N(0, 0.01²)).
What differs (TorchEBM's own choices, kept):
  * with a buffer: TorchEBM's buffer draws the batch's starts by stratified sampling and, for 5 %
    of them (new_sample_ratio), *adds N(0, 0.01²) noise*; ebm_zoo's replay buffer instead
    *restarts* 5 % of the drawn chains from uniform noise, and TorchEBM writes the negatives
    back FIFO, ebm_zoo back to the slots they came from;
  * the data order (numpy permutation per epoch, seed 0) and all random numbers differ;
  * the budget is CPU seconds of this process, excluding data loading and model building, like
    ebm_zoo's timing.json (which excludes them too).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FLAGS = flags.FLAGS
flags.DEFINE_float(
    "cpu_seconds", None, "Training budget in process CPU seconds (default: from --budget_from)."
)
flags.DEFINE_string(
    "budget_from",
    None,
    "An ebm_zoo run directory (timing.json) or preset directory / metadata.json (training_time) "
    "whose training CPU seconds are the budget.",
)
flags.DEFINE_integer("num_samples", 5000, "Fresh samples evaluated (the protocol uses 5,000).")
flags.DEFINE_integer("sample_batch", 250, "Samples per sampler call (the protocol's chunk).")
flags.DEFINE_integer("seed", 0, "Seed of the training (init, data order, chains) and of the samples.")
flags.DEFINE_integer("max_steps", None, "Stop after this many training steps even within the budget.")
flags.DEFINE_string("out", str(REPO / "docs/benchmarks/torchebm_mnist.json"), "JSON file of the row.")
flags.DEFINE_string(
    "sheets_dir", "reports/torchebm_mnist", "Directory of the protocol's report.json + samples.png."
)
flags.DEFINE_integer("threads", 0, "torch.set_num_threads (0 = torch's default, all cores).")
flags.DEFINE_enum(
    "malloc",
    "tuned",
    ["tuned", "default"],
    "tuned: re-run this process with ebm_zoo.bench.MALLOC_ENV (glibc keeps freed memory instead of "
    "page-faulting it back in at every Langevin step, as tools/bench.py's PyTorch workers do); "
    "default: glibc's defaults.",
)

CONFIG = "short_run_mnist"


def budget_from(path: str) -> tuple[float, str]:
    """(training CPU seconds, where they were read) of an ebm_zoo run or preset."""
    from ebm_zoo.presets import files
    from ebm_zoo.utils.checks import EbmZooError

    p = Path(path)
    timing = None
    if p.is_dir() and files.is_workdir(p) or (p / "timing.json").is_file():
        timing = files.training_time(p)
    else:
        meta_path = p / files.METADATA_FILE if p.is_dir() else p
        if meta_path.is_file():
            timing = files.read_json(meta_path, "Preset metadata").get("training_time")
    if not timing or timing.get("cpu_seconds") is None:
        raise EbmZooError(
            f"--budget_from={path} records no training CPU seconds (a run's timing.json, written by "
            "tools/train.py, or a preset metadata.json's training_time exported from such a run). "
            "Give the budget with --cpu_seconds=SECONDS."
        )
    if not timing.get("complete", False):
        raise EbmZooError(
            f"--budget_from={path}: its training time misses earlier invocations (complete=false), so it is "
            "not the run's full budget. Give --cpu_seconds=SECONDS."
        )
    return float(timing["cpu_seconds"]), f"{path} ({timing.get('source', 'training_time')})"


def check_flags():
    """Validates the flags (no TensorFlow or torch needed)."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    if FLAGS.cpu_seconds is None and not FLAGS.budget_from:
        raise EbmZooError("Give the training budget: --cpu_seconds=SECONDS or --budget_from=RUN_OR_PRESET.")
    if FLAGS.cpu_seconds is not None and FLAGS.budget_from:
        raise EbmZooError("Give one of --cpu_seconds or --budget_from, not both.")
    if FLAGS.cpu_seconds is not None:
        checks.check_positive(FLAGS.cpu_seconds, "--cpu_seconds")
    else:
        budget_from(FLAGS.budget_from)
    checks.check_count(FLAGS.num_samples, "--num_samples")
    checks.check_count(FLAGS.sample_batch, "--sample_batch")
    checks.check_seed(FLAGS.seed, "--seed")
    if FLAGS.max_steps is not None:
        checks.check_count(FLAGS.max_steps, "--max_steps")
    if FLAGS.threads < 0:
        raise EbmZooError(f"--threads must be >= 0, got {FLAGS.threads}.")
    checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")
    checks.check_output_dir(FLAGS.sheets_dir, "--sheets_dir")
    for module in ("torch", "torchebm"):
        import importlib.util

        if importlib.util.find_spec(module) is None:
            raise EbmZooError(f"{module} is not installed; install the bench extra: pip install -e .[bench].")


def settings() -> dict:
    """The short-run settings of configs/short_run_mnist.py that the peer copies."""
    from ebm_zoo import config as config_lib

    m = config_lib.get_config(CONFIG).model
    d = config_lib.get_config(CONFIG).data
    return {
        "config": CONFIG,
        "layers": [list(map(int, layer)) for layer in m.layers],
        "activation": m.activation,
        "batch_size": int(d.batch_size),
        "num_steps": int(m.num_steps),
        "sample_steps": int(m.sample_steps),
        "gradient_coefficient": float(m.step_size) ** 2 / 2,  # δ²/2
        "noise_std": float(m.step_size) * float(m.noise_scale),  # δ·s
        "learning_rate": float(m.learning_rate),
        "beta_1": float(m.momentum),
        "replay_capacity": int(m.replay_capacity),
        "replay_reinit_prob": float(m.replay_reinit_prob),
        "image_size": int(m.image_size),
    }


def build(s: dict, seed: int):
    """(energy model, sampler, CD loss, optimizer) in TorchEBM for the settings `s`."""
    import torch
    from torch import nn
    from torchebm.core import BaseModel
    from torchebm.losses import ContrastiveDivergence
    from torchebm.samplers import LangevinDynamics

    torch.manual_seed(seed)

    class ShortRunEnergy(BaseModel):
        """E(x) = −f(x), f = the Descriptor/ShortRun EnergyConvNet with a dense top."""

        def __init__(self):
            super().__init__()
            layers, c, size = [], 1, s["image_size"]
            for filters, kernel, stride in s["layers"]:
                pad_total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
                if pad_total % 2:
                    raise ValueError(f"TF 'same' padding is asymmetric for kernel {kernel} on {size} px")
                layers += [nn.Conv2d(c, filters, kernel, stride, padding=pad_total // 2), nn.SiLU()]
                c, size = filters, math.ceil(size / stride)
            self.convs = nn.Sequential(*layers)
            self.top = nn.Linear(c * size * size, 1)
            for mod in self.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    nn.init.xavier_uniform_(mod.weight)
                    nn.init.zeros_(mod.bias)

        def forward(self, x):
            return -self.top(self.convs(x).flatten(1))[:, 0]

    model = ShortRunEnergy()
    sampler = LangevinDynamics(
        model,
        step_size=s["gradient_coefficient"],
        noise_scale=s["noise_std"] / math.sqrt(2.0 * s["gradient_coefficient"]),
        clamp=(-1.0, 1.0),
    )
    shape = (1, s["image_size"], s["image_size"])
    g = torch.Generator().manual_seed(seed)
    if s["replay_capacity"]:
        loss = ContrastiveDivergence(
            model,
            sampler,
            k_steps=s["num_steps"],
            persistent=True,
            buffer_size=s["replay_capacity"],
            init_steps=0,
            new_sample_ratio=s["replay_reinit_prob"],
            energy_reg_weight=0.0,
        )
        loss.initialize_buffer(shape, generator=g)
        loss.replay_buffer.copy_(torch.rand((s["replay_capacity"], *shape), generator=g) * 2.0 - 1.0)
    else:

        class NoiseStartCD(ContrastiveDivergence):
            """TorchEBM's non-persistent CD starts its chains at the data batch (Hinton's CD);
            the short-run model starts them from uniform noise in [−1, 1]. Only the start
            points are replaced; the sampling and the loss are TorchEBM's."""

            def get_start_points(self, x, generator=None):
                u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
                return (u * 2.0 - 1.0).to(x.device)

        loss = NoiseStartCD(model, sampler, k_steps=s["num_steps"], persistent=False, energy_reg_weight=0.0)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=s["learning_rate"], betas=(s["beta_1"], 0.999), eps=1e-8
    )
    return model, sampler, loss, optimizer


def train(s: dict, cpu_seconds: float, seed: int, max_steps: int | None = None) -> tuple:
    """Trains until `cpu_seconds` of process CPU time are used; returns (sampler, training record)."""
    import numpy as np
    import torch

    from ebm_zoo.metrics import mnist_protocol

    train_images = mnist_protocol.mnist_images("train")  # [60000, 28, 28, 1] in [0, 1]
    data = torch.from_numpy(np.ascontiguousarray(train_images.transpose(0, 3, 1, 2))) * 2.0 - 1.0
    model, sampler, loss_fn, optimizer = build(s, seed)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed + 1)
    b, step, order, pos = s["batch_size"], 0, rng.permutation(len(data)), 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    losses = []
    while time.process_time() - cpu0 < cpu_seconds and (max_steps is None or step < max_steps):
        if pos + b > len(order):
            order, pos = rng.permutation(len(data)), 0
        x = data[torch.from_numpy(order[pos : pos + b])]
        pos += b
        optimizer.zero_grad()
        loss, _ = loss_fn(x, generator=g)
        loss.backward()
        optimizer.step()
        step += 1
        losses.append(float(loss))
    record = {
        "steps": step,
        "cpu_seconds": round(time.process_time() - cpu0, 2),
        "wall_seconds": round(time.perf_counter() - wall0, 2),
        "epochs": round(step * b / len(data), 3),
        "final_loss_mean_last_100": float(np.mean(losses[-100:])) if losses else None,
        "finite": bool(all(math.isfinite(v) for v in losses)),
    }
    return sampler, record


def sample_fn(sampler, s: dict):
    """`sample_fn(n, seed=...)` → float32 [n, 28, 28, 1] in [0, 1]: K steps from uniform noise."""
    import numpy as np
    import torch

    def fn(n, seed):
        g = torch.Generator().manual_seed(int(seed))
        x0 = torch.rand((int(n), 1, s["image_size"], s["image_size"]), generator=g) * 2.0 - 1.0
        x = sampler.sample(x=x0, n_steps=s["sample_steps"], generator=g)
        return np.clip((x.detach().numpy().transpose(0, 2, 3, 1) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)

    return fn


FIGURE_KEYS = (
    "fd_mnist",
    "kid_mnist",
    "kid_mnist_std",
    "classifier_score",
    "classifier_score_std",
    "effective_classes",
    "precision",
    "recall",
    "class_fractions",
    "num_samples",
    "num_reference",
    "seed",
    "standard",
    "classifier_sha256",
    "sample_batch",
    "sampling_cpu_seconds",
    "sampling_wall_seconds",
    "sampling_cpu_seconds_per_100",
    "metric_seconds",
)


def _with_malloc_env() -> None:
    """With --malloc=tuned, replaces this process by itself with `bench.MALLOC_ENV` set (glibc
    reads the variables only at start-up). The page faults the defaults cause are CPU time,
    which is the peer's budget."""
    from ebm_zoo.bench import MALLOC_ENV

    if FLAGS.malloc == "tuned" and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_ENV})


def main(argv):
    del argv
    _with_malloc_env()
    import torch
    import torchebm

    from ebm_zoo.metrics import mnist_protocol
    from ebm_zoo.utils.atomic import atomic_write_text

    if FLAGS.threads:
        torch.set_num_threads(FLAGS.threads)
    if FLAGS.cpu_seconds is not None:
        budget, source = float(FLAGS.cpu_seconds), "--cpu_seconds"
    else:
        budget, source = budget_from(FLAGS.budget_from)
    s = settings()
    print(
        f"TorchEBM {torchebm.__version__}: training {CONFIG}'s network for {budget:.0f} CPU-s ({source})",
        flush=True,
    )
    sampler, record = train(s, budget, FLAGS.seed, FLAGS.max_steps)
    print(
        f"  {record['steps']} steps, {record['cpu_seconds']} CPU-s, {record['wall_seconds']} s wall-clock",
        flush=True,
    )
    report = mnist_protocol.run_mnist_protocol(
        sample_fn(sampler, s),
        FLAGS.sheets_dir,
        "torchebm_short_run",
        num_samples=FLAGS.num_samples,
        sample_batch=FLAGS.sample_batch,
        seed=FLAGS.seed,
    )
    from ebm_zoo.bench import MALLOC_ENV
    from ebm_zoo.utils import machine

    load, cpu = machine.loadavg(), machine.cpu_name()
    doc = {
        "command": "python tools/experiments/torchebm_mnist.py "
        + (f"--cpu_seconds={budget:g}" if source == "--cpu_seconds" else f"--budget_from={FLAGS.budget_from}")
        + ("" if FLAGS.num_samples == 5000 else f" --num_samples={FLAGS.num_samples}")
        + (f" --threads={FLAGS.threads}" if FLAGS.threads else "")
        + (" --malloc=default" if FLAGS.malloc == "default" else ""),
        "torchebm_version": torchebm.__version__,
        "torch_version": torch.__version__,
        "settings": s,
        "budget": {"cpu_seconds": budget, "source": source},
        "training": record,
        "figures": {k: report[k] for k in FIGURE_KEYS if k in report},
        "sheet": report["files"]["sheet"],
        "machine": {
            "cpu": cpu,
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "malloc_env": {k: os.environ[k] for k in MALLOC_ENV if k in os.environ},
            "loadavg_at_end": load,
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    atomic_write_text(FLAGS.out, json.dumps(doc, indent=2) + "\n")
    f = doc["figures"]
    print(
        f"FD-MNIST {f['fd_mnist']:.4g}, classifier score {f['classifier_score']:.3g}, effective classes "
        f"{f['effective_classes']:.3g}, precision {f['precision']:.3f}, recall {f['recall']:.3f}; wrote {FLAGS.out}"
    )


if __name__ == "__main__":
    cli.run(main, check=check_flags)
