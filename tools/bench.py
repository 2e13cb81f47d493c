"""Benchmarks: medians and ratios from one run, with the machine named.

    python tools/bench.py                       # every suite
    python tools/bench.py --suites=langevin,vapo --quick
    python tools/bench.py --out=bench.json

Never used from tests: performance is measured here, not asserted in timed tests.
"""

from __future__ import annotations

import importlib
import os

# PyTorch's OpenMP threads spin-wait for each other by default, which collapses its throughput
# whenever a core is shared (measured 7-13x slower here). TF does not use OpenMP. Must be set
# before torch is imported (machine_info imports it for its version).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ebm_zoo.utils import cli  # noqa: E402

if not cli.quiet_startup():
    cli.import_tensorflow_quietly()

from absl import app, flags  # noqa: E402

from ebm_zoo import bench  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("suites", list(bench.SUITES), f"Suites to run, from: {', '.join(bench.SUITES)}.")
flags.DEFINE_bool("quick", False, "Smaller sizes and fewer repeats (a smoke run).")
flags.DEFINE_string("out", None, "Optional JSON file for all rows.")


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def main(argv):
    del argv
    unknown = [s for s in FLAGS.suites if s not in bench.SUITES]
    if not FLAGS.suites:
        raise app.UsageError(f"--suites is empty; valid: {', '.join(bench.SUITES)}.")
    if FLAGS.out:
        from ebm_zoo.utils import checks

        checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")
    if unknown:
        raise app.UsageError(f"Unknown suite(s) {unknown}; valid: {', '.join(bench.SUITES)}.")
    info = bench.machine_info()
    info["matmul_gflops"] = bench.matmul_gflops(1024 if FLAGS.quick else 2048)
    print("machine: " + ", ".join(f"{k}={_fmt(v)}" for k, v in info.items()))
    report = {"machine": info, "rows": []}
    for name in FLAGS.suites:
        try:
            module = importlib.import_module(bench.SUITES[name])
        except ModuleNotFoundError as e:
            print(f"[{name}] not available in this checkout ({e}); skipped")
            continue
        print(f"\n== {name}", flush=True)
        for row in module.run(quick=FLAGS.quick, matmul_gflops=info["matmul_gflops"]):
            row = {"suite": name, **row}
            report["rows"].append(row)
            print("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "suite"), flush=True)
    if FLAGS.out:
        from ebm_zoo.utils import atomic

        atomic.write_json(FLAGS.out, report, indent=2, default=str)
        print(f"\nwrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main)
