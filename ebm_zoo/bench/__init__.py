"""The fair benchmark harness behind tools/bench.py (method: docs/bench.md).

Every comparison is a *case* (one net, one task: "sampler" = T Langevin steps per call, "train"
= one full training iteration per call) timed for several *variants* (ebm_zoo fp32 / bf16,
plain PyTorch, channels-last, torch.compile, bf16 autocast, TorchEBM). Rules:

- Each framework runs in its own worker process (`ebm_zoo.bench.worker`) with its library
  defaults (no thread or OpenMP settings), so neither sees the other's thread pools; the
  coordinator asks the workers for one timed call at a time.
- Calls are interleaved: round r runs the variants in order, round r + 1 in reverse order
  (`interleaved_order`), so a change of machine load hits every variant alike.
- Every variant runs the same number of steps per call, from weights copied from the TF net;
  at the start of each case every variant's f(x), ∂f/∂x and one noise-free update are compared
  with ebm_zoo fp32's (`compare_outputs`, max error / max |reference| ≤ 1e-5; bf16 rows 0.25, a sanity bound: a wrong net is off by ~1).
- Each row carries wall seconds and process CPU seconds per call (medians), the load average,
  and, for samplers, achieved GFLOP/s as a fraction of the matmul rate measured in the same run
  (median over several sizes, `matmul_rate`).
- The ratio of ebm_zoo fp32 against the best competitor is always printed, whoever wins
  (`ratio_summary`).

A suite is a module `ebm_zoo.bench.<name>` with
`cases(quick) -> list[dict]` and `setup(framework, case, variants, workdir) -> Setup`
(see ebm_zoo.bench.worker).
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence

from ebm_zoo.utils.machine import RELEVANT_FLAGS, cpu_description  # noqa: F401 (re-exported)

SCHEMA = "ebm_zoo.bench/2"

SUITES = {
    "langevin": "ebm_zoo.bench.langevin",
    "multigrid": "ebm_zoo.bench.multigrid",
    "ggcn": "ebm_zoo.bench.ggcn",
    "vapo": "ebm_zoo.bench.vapo",
    "mcmc": "ebm_zoo.bench.mcmc",
}


def suite_cases(suite: str, quick: bool) -> list[dict]:
    """The cases of one suite (importing its module; TensorFlow is imported only by setups)."""
    import importlib

    return importlib.import_module(SUITES[suite]).cases(quick)


#: CPU flags that decide which kernels (and whether bf16 rows) are possible.

#: Tolerances of the start-of-case output check (max |a − b| / max |reference|).
TOL_FP32 = 1e-5
TOL_BF16 = 0.25

#: The competitors of a row named "ebm_zoo_fp32" (any variant not starting with "ebm_zoo").
OURS = "ebm_zoo_fp32"


# ------------------------------------------------------------------------------------------
# Timing.
def median(xs) -> float:
    return float(statistics.median(xs))


def time_fn(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of `repeats` calls of `fn` after `warmup` untimed calls (blocking fn)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def timed_call(fn: Callable[[], object]) -> dict:
    """One call of a blocking `fn`: {"wall": seconds, "cpu": process CPU seconds (all threads),
    "minflt": minor page faults of the process during the call}."""
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall": wall, "cpu": cpu, "minflt": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0}


def interleaved_order(variants: Sequence[str], rounds: int) -> list[str]:
    """A, B, C, C, B, A, A, B, C, …: round r in order for even r, reversed for odd r."""
    order = []
    for r in range(rounds):
        order.extend(variants if r % 2 == 0 else list(reversed(variants)))
    return order


def run_interleaved(call: Callable[[str], dict], variants: Sequence[str], rounds: int) -> dict:
    """Times `call(variant)` (→ {"wall", "cpu"}) in `interleaved_order`; returns
    {"order": [...], "samples": {variant: [{"wall", "cpu", "load1"}, ...]}}."""
    order = interleaved_order(variants, rounds)
    samples: dict[str, list] = {v: [] for v in variants}
    for v in order:
        t = dict(call(v))
        t["load1"] = os.getloadavg()[0]
        samples[v].append(t)
    return {"order": order, "samples": samples}


# ------------------------------------------------------------------------------------------
# Machine.
def has_bf16(flags: dict) -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512_BF16 or AMX-BF16)."""
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


#: Environment variables that change how either library threads or which kernels TF picks: recorded
#: in every bench JSON (`machine.thread_env`) and, when set, written before its `command`.
THREAD_ENV_KEYS = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "KMP_BLOCKTIME",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD",
    "EBM_ZOO_FUSED",
)


def command_line(argv: Sequence[str], executable: str) -> str:
    """The command that reproduces this run: the set `THREAD_ENV_KEYS` as `K=V` prefixes, then
    the interpreter's name and `argv` (e.g. `TF_NUM_INTEROP_THREADS=1 python tools/bench.py ...`)."""
    env = [f"{k}={os.environ[k]}" for k in THREAD_ENV_KEYS if os.environ.get(k) is not None]
    return " ".join([*env, os.path.basename(executable), *argv])


def machine_info() -> dict:
    """CPU (model, flags), memory, Python and library versions, thread settings, load average.

    Imports neither TensorFlow nor PyTorch (their versions come from package metadata), so the
    coordinator process holds no thread pools of its own.
    """
    from importlib import metadata

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu_description(),
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "versions": {p: version(p) for p in ("tensorflow", "keras", "torch", "torchebm", "numpy")},
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV_KEYS},
        "loadavg_start": list(os.getloadavg()),
    }


def matmul_rate(sizes: Sequence[int] = (512, 1024, 1536, 2048), repeats: int = 3) -> dict:
    """float32 matmul GFLOP/s of TF for several n×n sizes, and their median (the roofline).

    Runs in the calling process (the TF worker), inside the same bench run as the rows.
    """
    import tensorflow as tf

    rates = []
    for n in sizes:
        a = tf.random.normal([n, n])
        b = tf.random.normal([n, n])
        f = tf.function(lambda a=a, b=b: tf.reduce_sum(tf.matmul(a, b)))
        t = median(time_fn(lambda f=f: f().numpy(), repeats=repeats, warmup=2))
        rates.append(2.0 * n**3 / t / 1e9)
    return {"sizes": list(sizes), "gflops": rates, "median_gflops": median(rates)}


# ------------------------------------------------------------------------------------------
# Output checks.
def compare_outputs(reference: dict, other: dict) -> dict:
    """Error of each output of `other` against `reference`, relative to max |reference|.

    Both are {name: array} with the same names (e.g. "f", "grad", "step"). The error of an
    output is the 99th percentile of |other − reference| / max |reference| over its elements
    (the maximum for outputs of < 100 elements): a LeakyReLU input within rounding of 0 takes
    the other branch in one framework and changes ∂f/∂x on its receptive field (seen on 75 of
    36,864 elements for one input of the multi-grid net), which is not a different function.
    Returns {name: error, name + "_max": the maximum elementwise error, "max": the largest error}.
    """
    import numpy as np

    errs = {}
    for k, ref in reference.items():
        ref = np.asarray(ref, np.float64)
        got = np.asarray(other[k], np.float64)
        if got.shape != ref.shape:
            errs[k] = errs[k + "_max"] = float("inf")
            continue
        scale = float(np.max(np.abs(ref))) or 1.0
        d = np.abs(got - ref).ravel() / scale
        errs[k + "_max"] = float(d.max())
        errs[k] = float(np.percentile(d, 99)) if d.size >= 100 else float(d.max())
    main = [v for k, v in errs.items() if not k.endswith("_max")]
    errs["max"] = max(main) if main else float("nan")
    return errs


def short_error(e: BaseException, limit: int = 300) -> str:
    """One line for a skipped row: the exception type and the last line of its message (TF's
    "in user code:" tracebacks put the actual error last)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {(lines[-1] if lines else '')[:limit]}"


def check_tolerance(variant: str) -> float:
    return TOL_BF16 if "bf16" in variant else TOL_FP32


# ------------------------------------------------------------------------------------------
# Rows and ratios.
def make_row(
    variant: str,
    samples: list[dict],
    *,
    task: str,
    steps: int,
    step_flops: float | None,
    matmul_gflops: float | None,
    extra: dict | None = None,
) -> dict:
    """One printed/JSON row from the interleaved samples of one variant."""
    wall = median([s["wall"] for s in samples])
    cpu = median([s["cpu"] for s in samples])
    rate = (steps / wall) if task == "sampler" else (1.0 / wall)
    row = {
        "variant": variant,
        "unit": {"sampler": "steps/s", "train": "it/s"}.get(task, f"{task}s/s"),
        "rate": rate,
        "median_s": wall,
        "cpu_s": cpu,
        "calls": len(samples),
        "load1": median([s["load1"] for s in samples]),
        "walls": [s["wall"] for s in samples],
    }
    if all("minflt" in s for s in samples):
        row["minflt"] = median([s["minflt"] for s in samples])
    if task == "sampler" and step_flops:
        row["gflops"] = step_flops * steps / wall / 1e9
        if matmul_gflops:
            row["frac_of_matmul"] = row["gflops"] / matmul_gflops
    row.update(extra or {})
    return row


def paired_ratio(samples_ours: list[dict], samples_other: list[dict]) -> float:
    """Median over rounds of t_other / t_ours (> 1: ours faster); robust to load drifting."""
    pairs = [o["wall"] / s["wall"] for s, o in zip(samples_ours, samples_other)]
    return median(pairs) if pairs else float("nan")


def ratio_summary(rows: list[dict], ours: str = OURS) -> dict:
    """Ratios of `ours` against the competitors, computed whoever wins.

    Returns {"ours": ..., "best_competitor": variant or None, "vs_best": rate_ours / rate_best,
    "vs": {variant: rate_ours / rate_variant}, "winner": variant, "note": str}. Rows that failed
    the output check or were skipped are not competitors.
    """
    by = {r["variant"]: r for r in rows if "rate" in r}
    out = {"ours": ours, "best_competitor": None, "vs_best": None, "vs": {}, "winner": None, "note": ""}
    if ours not in by:
        out["note"] = f"no {ours} row"
        return out
    comps = {v: r for v, r in by.items() if not v.startswith("ebm_zoo") and r.get("same_output", True)}
    fp32_comps = {v: r for v, r in comps.items() if "bf16" not in v}
    out["vs"] = {v: by[ours]["rate"] / r["rate"] for v, r in comps.items()}
    if not fp32_comps:
        out["note"] = "no competitor row (see the skipped rows)"
        return out
    best = max(fp32_comps, key=lambda v: fp32_comps[v]["rate"])
    out["best_competitor"] = best
    out["vs_best"] = by[ours]["rate"] / fp32_comps[best]["rate"]
    out["winner"] = max(by, key=lambda v: by[v]["rate"])
    return out


def format_ratio(summary: dict) -> str:
    """The always-printed ratio line."""
    if summary["vs_best"] is None:
        return f"  ratio {summary['ours']} vs best competitor: n/a ({summary['note']})"
    r = summary["vs_best"]
    who = "ebm_zoo faster" if r > 1 else "competitor faster" if r < 1 else "tie"
    others = ", ".join(f"{v} {x:.3f}" for v, x in summary["vs"].items())
    return (
        f"  ratio {summary['ours']} / best competitor ({summary['best_competitor']}): {r:.3f} ({who}); "
        f"vs each: {others}"
    )


def format_row(row: dict) -> str:
    if "skipped" in row:
        return f"  {row['variant']:<22} skipped: {row['skipped']}"
    parts = [
        f"  {row['variant']:<22} {row['rate']:9.4g} {row['unit']:<7}",
        f"median {row['median_s']:.4g} s",
        f"cpu {row['cpu_s']:.4g} s",
        f"load1 {row['load1']:.2f}",
    ]
    if "minflt" in row:
        parts.append(f"{row['minflt']:.0f} page faults")
    if "frac_of_matmul" in row:
        parts.append(f"{row['gflops']:.4g} GFLOP/s = {row['frac_of_matmul']:.2f} of matmul")
    if "check_err" in row:
        parts.append(f"check err {row['check_err']:.1e}")
    if row.get("same_output") is False:
        parts.append("OUTPUT MISMATCH (excluded from ratios)")
    return ", ".join(parts)


#: glibc malloc settings of the PyTorch bench workers (`tools/bench.py --malloc=tuned`, the
#: default; the TF workers keep glibc's defaults, which measured faster for TF: 55 vs 41 steps/s
#: on the short-run sampler in a worker that also holds the bf16 model, AMD EPYC).
#: With glibc's defaults a process returns freed blocks of a few MiB to the kernel (heap trim,
#: or munmap above the dynamic mmap threshold) and page-faults them back in on the next
#: allocation: the PyTorch twin of the short-run sampler took ≈ 590,000 minor page faults per
#: 60-step call on the AMD EPYC and ran 1.5× slower than with these settings, which take it to
#: zero. PyTorch's CPU tuning guide fixes the same with jemalloc or TCMalloc; fixing glibc's
#: thresholds needs nothing installed.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024),  # glibc's maximum on 64-bit
    "MALLOC_TRIM_THRESHOLD_": str(4 * 1024**3),
}

#: jemalloc settings of the PyTorch bench workers with `tools/bench.py --malloc=jemalloc`
#: (LD_PRELOAD of the system's libjemalloc, e.g. Debian's libjemalloc2): freed pages are never
#: returned to the kernel (no decay), and large blocks get their own extents. With jemalloc's
#: default decay the PyTorch twins of the GGCN training iteration page-faulted more than with
#: glibc and ran 1.3–1.7× slower; with these settings torch channels-last ran 1.10× faster than on
#: the tuned glibc (docs/bench.md, "Allocator").
JEMALLOC_CONF = (
    "oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1"
)
JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)
MALLOC_MODES = ("tuned", "jemalloc", "default")


def jemalloc_path() -> str | None:
    """The first libjemalloc.so.2 of `JEMALLOC_PATHS` that exists, else None."""
    return next((p for p in JEMALLOC_PATHS if os.path.exists(p)), None)


def malloc_env(mode: str) -> dict:
    """Environment of the PyTorch bench workers for `--malloc=mode` (TF workers get none)."""
    from ebm_zoo.utils.checks import EbmZooError

    if mode == "tuned":
        return dict(MALLOC_ENV)
    if mode == "default":
        return {}
    if mode == "jemalloc":
        path = jemalloc_path()
        if path is None:
            raise EbmZooError(
                f"--malloc=jemalloc: no libjemalloc.so.2 in {', '.join(JEMALLOC_PATHS)}; install it "
                "(apt-get install libjemalloc2) or use --malloc=tuned."
            )
        return {"LD_PRELOAD": path, "MALLOC_CONF": JEMALLOC_CONF}
    raise EbmZooError(f"--malloc must be one of {', '.join(MALLOC_MODES)}, got {mode!r}.")


#: Keys every report and every case must have (tests/test_bench.py checks them).
REPORT_KEYS = {"schema", "command", "started_utc", "finished_utc", "machine", "matmul", "cases"}
CASE_KEYS = {"suite", "case", "task", "batch", "steps", "order", "rows", "ratio", "checks", "loadavg_end"}
ROW_KEYS = {"variant", "unit", "rate", "median_s", "cpu_s", "calls", "load1"}


def validate_report(report: dict) -> None:
    """Raises ValueError when a report misses a key of the schema."""
    missing = REPORT_KEYS - set(report)
    if missing:
        raise ValueError(f"report misses {sorted(missing)}")
    for key in ("model_name", "flags"):
        if key not in report["machine"]["cpu"]:
            raise ValueError(f"machine.cpu misses {key}")
    for case in report["cases"]:
        missing = CASE_KEYS - set(case)
        if missing:
            raise ValueError(f"case {case.get('case')} misses {sorted(missing)}")
        for row in case["rows"]:
            if "skipped" in row:
                continue
            missing = ROW_KEYS - set(row)
            if missing:
                raise ValueError(f"row {row.get('variant')} misses {sorted(missing)}")
