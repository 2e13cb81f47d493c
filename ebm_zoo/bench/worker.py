"""A benchmark worker process: one framework, commands as JSON lines on stdin.

    python -m ebm_zoo.bench.worker tf|torch

Commands (one JSON object per line; each answered by one line starting with `REPLY_PREFIX`):
- {"cmd": "info"}                            → the thread settings the library runs with
- {"cmd": "matmul", "sizes": [...]}          → `ebm_zoo.bench.matmul_rate` (TF worker only)
- {"cmd": "setup", "case": {...}, "variants": [...], "workdir": path, "cpu_flags": {...}}
  → builds the case's variants with `<suite module>.setup(framework, case, variants, workdir,
  cpu_flags)`, which returns {"variants": {name: (fn, check)}, "skipped": {name: reason}, ...};
  each fn is called once untimed (warm-up: tracing, compilation); the checks are written to
  `workdir/checks_<framework>.npz`. Reply: {"ready", "skipped", "first_call_s", "checks_file", ...}.
- {"cmd": "run", "variant": name}            → `ebm_zoo.bench.timed_call(fn)`: {"wall", "cpu"}
- {"cmd": "quit"}

The worker sets no thread or OpenMP options: each library runs with its defaults.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

REPLY_PREFIX = "@@bench "


def _reply(obj) -> None:
    sys.stdout.write(REPLY_PREFIX + json.dumps(obj, default=float) + "\n")
    sys.stdout.flush()


def thread_info(framework: str) -> dict:
    """The thread settings the library actually runs with (no setting is changed here), and
    the malloc variables of this process (glibc's, or jemalloc's LD_PRELOAD and MALLOC_CONF)."""
    from ebm_zoo.bench import MALLOC_ENV

    malloc_env = {k: os.environ[k] for k in (*MALLOC_ENV, "LD_PRELOAD", "MALLOC_CONF") if k in os.environ}
    if framework == "tf":
        import tensorflow as tf

        return {
            "malloc_env": malloc_env,
            "intra_op_parallelism_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_parallelism_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "note": "0 = TF's default (one thread per core)",
        }
    import torch

    return {
        "malloc_env": malloc_env,
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "parallel_info": torch.__config__.parallel_info().splitlines()[:8],
    }


def main(framework: str) -> None:
    import numpy as np

    from ebm_zoo import bench

    fns: dict = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "quit":
                _reply({"ok": True})
                return
            if cmd["cmd"] == "info":
                _reply(thread_info(framework))
            elif cmd["cmd"] == "matmul":
                _reply(bench.matmul_rate(cmd["sizes"], cmd.get("repeats", 3)))
            elif cmd["cmd"] == "setup":
                fns.clear()
                case = cmd["case"]
                module = importlib.import_module(bench.SUITES[case["suite"]])
                res = module.setup(framework, case, cmd["variants"], cmd["workdir"], cmd["cpu_flags"])
                skipped = dict(res.get("skipped", {}))
                first, checks = {}, {}
                for v, (fn, check) in res["variants"].items():
                    try:
                        first[v] = bench.timed_call(fn)["wall"]
                    except Exception as e:  # noqa: BLE001 — e.g. torch.compile failing
                        skipped[v] = "first call failed: " + bench.short_error(e)
                        continue
                    fns[v] = fn
                    for k, a in (check or {}).items():
                        checks[f"{v}/{k}"] = np.asarray(a, np.float32)
                tag = "".join(c if c.isalnum() else "_" for c in cmd.get("tag", framework))
                path = os.path.join(cmd["workdir"], f"checks_{tag}.npz")
                np.savez(path, **checks)
                extra = {k: v for k, v in res.items() if k not in ("variants", "skipped")}
                _reply(
                    {
                        "ready": list(fns),
                        "skipped": skipped,
                        "first_call_s": first,
                        "checks_file": path,
                        **extra,
                    }
                )
            elif cmd["cmd"] == "profile":  # tools/bench.py --profile of a PyTorch variant
                from ebm_zoo.bench import profile

                trace = profile.torch_trace if framework == "torch" else profile.trace
                table = trace(fns[cmd["variant"]], cmd["calls"])
                table.pop("trace", None)
                _reply(table)
            elif cmd["cmd"] == "run":
                _reply(bench.timed_call(fns[cmd["variant"]]))
            else:
                _reply({"error": f"unknown command {cmd['cmd']!r}"})
        except Exception as e:  # noqa: BLE001 — the coordinator reports it
            _reply({"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]})


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main(sys.argv[1])
