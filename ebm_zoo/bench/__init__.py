"""Benchmark helpers used by tools/bench.py: timing, machine description, matmul roofline.

A suite is a module `ebm_zoo.bench.<name>` with `run(quick: bool, matmul_gflops: float) -> list[dict]`; each dict is
one measured row: {"name": ..., "median_s": ..., plus any figures (steps_per_s, gflops, ratio)}.
tools/bench.py runs suites in one process and prints medians and ratios with the machine named.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

SUITES = {
    "langevin": "ebm_zoo.bench.langevin",
    "multigrid": "ebm_zoo.bench.multigrid",
    "ggcn": "ebm_zoo.bench.ggcn",
    "vapo": "ebm_zoo.bench.vapo",
    "mcmc": "ebm_zoo.bench.mcmc",
}


def time_fn(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of `repeats` calls of `fn` after `warmup` untimed calls.

    `fn` must block until its result is ready (e.g. call `.numpy()` on a TF result).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(xs) -> float:
    return float(statistics.median(xs))


def machine_info() -> dict:
    """CPU model, core count, memory and library versions, for the header of every report."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": mem_gib, "python": platform.python_version()}
    import tensorflow as tf

    info["tensorflow"] = tf.__version__
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    return info


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The machine's measured float32 matrix-multiply rate in GFLOP/s (TF, n×n @ n×n)."""
    import tensorflow as tf

    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    t = median(time_fn(lambda: f().numpy(), repeats=repeats, warmup=2))
    return 2.0 * n**3 / t / 1e9
