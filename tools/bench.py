"""The fair bench: ebm_zoo against PyTorch variants and TorchEBM, interleaved, one JSON per run.

    python tools/bench.py --out=bench.json                     # every suite, full sizes
    python tools/bench.py --suites=langevin --quick            # a smoke run (tiny sizes)
    python tools/bench.py --suites=multigrid --variants=torch_cl_fp32,torchebm_fp32
    python tools/bench.py --suites=langevin --variants=ebm_zoo_fp32 --tf_env=TF_ENABLE_ONEDNN_OPTS=0
    python tools/bench.py --render=docs/bench_2026-12-02.json   # its summary into docs/bench.md + README
    python tools/bench.py --profile=shortrun32x3/train --out=docs/profile.json  # tf.profiler op tables
    python tools/bench.py --profile=shortrun32x3/train --variants=ebm_zoo_fp32,torch_compile_fp32

Method (interleaving, copied weights, output checks, ratios): docs/bench.md. Each framework
runs in its own worker process with its default thread and OpenMP settings; nothing here sets
them, except glibc's malloc thresholds in the PyTorch workers (`ebm_zoo.bench.MALLOC_ENV`, the
effect PyTorch's CPU tuning guide gets from jemalloc/TCMalloc; `--malloc=default` leaves glibc's
defaults, under which the PyTorch twins page-fault their freed memory back in on every call). Performance is measured here, never asserted in tests.
"""

from __future__ import annotations

import os
import sys

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

from ebm_zoo import bench  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("suites", list(bench.SUITES), f"Suites to run, from: {', '.join(bench.SUITES)}.")
flags.DEFINE_bool("quick", False, "Tiny sizes and 2 rounds (a smoke run; what the tests use).")
flags.DEFINE_integer("rounds", None, "Interleaved rounds per case (default 5; 2 with --quick).")
flags.DEFINE_list("variants", None, "Only these variants (ebm_zoo_fp32 is always kept).")
flags.DEFINE_list("cases", None, "Only cases whose name contains one of these strings.")
flags.DEFINE_string("out", None, "JSON file for the whole run.")
flags.DEFINE_integer("steps", None, "T per call of every sampler case instead of the suite's (A/Bs).")
flags.DEFINE_string(
    "render",
    None,
    "Run nothing: write the summary of this saved --out JSON between the bench_summary markers of "
    "--docs (for the figures in docs/bench.md and the README).",
)
flags.DEFINE_list(
    "docs", ["docs/bench.md", "README.md"], "Files whose bench_summary block --render replaces."
)
flags.DEFINE_bool("check", False, "With --render: only check that the --docs blocks are up to date.")
flags.DEFINE_string(
    "profile",
    None,
    "Time nothing: trace this case (e.g. shortrun32x3/train) and print the op table of each "
    "variant in --variants (default ebm_zoo_fp32 and ebm_zoo_bf16): tf.profiler for the ebm_zoo "
    "variants, torch.profiler in a PyTorch worker (with --malloc's settings) for the PyTorch ones.",
)
flags.DEFINE_integer("profile_calls", 3, "With --profile: calls traced (after one untraced call).")
flags.DEFINE_list(
    "tf_env", None, "KEY=VALUE,...: also run the TF variants in a 2nd worker with these variables (A/B)."
)
flags.DEFINE_enum(
    "malloc",
    "tuned",
    ["tuned", "jemalloc", "default"],
    "tuned: the PyTorch workers with ebm_zoo.bench.MALLOC_ENV (glibc keeps freed memory); "
    "jemalloc: the PyTorch workers with the system's libjemalloc preloaded, no decay "
    "(ebm_zoo.bench.JEMALLOC_CONF); default: glibc's defaults everywhere.",
)
flags.DEFINE_list(
    "torch_env", None, "KEY=VALUE,...: also run the PyTorch variants in a 2nd worker with these (A/B)."
)


def _env(items):
    """KEY=VALUE items (absl split the flag at commas). An item without "=" continues the value
    before it, so values with commas pass: MALLOC_CONF=background_thread:true,dirty_decay_ms:-1."""
    from ebm_zoo.utils.checks import EbmZooError

    if not items:
        return None
    if "=" not in items[0]:
        raise EbmZooError(f"--tf_env/--torch_env take KEY=VALUE items, got {items[0]!r} first.")
    env, key = {}, None
    for item in items:
        if "=" in item:
            key, value = item.split("=", 1)
            if not key:
                raise EbmZooError(f"--tf_env/--torch_env: {item!r} has no KEY before '='.")
            env[key] = value
        else:
            env[key] += "," + item
    return env


def check_flags():
    """Validates the flags (no TensorFlow needed)."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    unknown = [s for s in FLAGS.suites if s not in bench.SUITES]
    if unknown:
        raise EbmZooError(f"Unknown suite(s) {unknown}; valid: {', '.join(bench.SUITES)}.")
    if FLAGS.rounds is not None:
        checks.check_count(FLAGS.rounds, "--rounds")
    if FLAGS.steps is not None:
        checks.check_count(FLAGS.steps, "--steps")
    _env(FLAGS.tf_env)
    _env(FLAGS.torch_env)
    bench.malloc_env(FLAGS.malloc)  # --malloc=jemalloc without the library: one clear error now
    checks.check_count(FLAGS.profile_calls, "--profile_calls")
    if FLAGS.profile is not None:
        names = [c["case"] for s in bench.SUITES for c in bench.suite_cases(s, quick=True)]
        if FLAGS.profile not in names:
            raise EbmZooError(
                f"--profile={FLAGS.profile!r} is not a bench case; choose from: {', '.join(names)}."
            )
    if FLAGS.out:
        checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")
        if os.path.isdir(FLAGS.out):
            raise EbmZooError(f"--out={FLAGS.out!r} is a directory; give a JSON file name.")


def render(path: str) -> None:
    """Writes (or with --check, compares) the summary block of a saved run in every --docs file."""
    import json

    from ebm_zoo.bench import runner
    from ebm_zoo.utils import atomic
    from ebm_zoo.utils.checks import EbmZooError

    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        bench.validate_report(report)
    except (OSError, ValueError) as e:
        raise EbmZooError(f"--render={path}: not a readable bench report ({e}).") from None
    block = runner.summary_block(report, path)
    begin, end = runner.SUMMARY_MARKERS
    stale = []
    for doc in FLAGS.docs:
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise EbmZooError(f"{doc} must hold {begin!r} and then {end!r}, once each.")
        head, rest = text.split(begin, 1)
        new = f"{head}{begin}\n{block}\n{end}{rest.split(end, 1)[1]}"
        if new != text:
            stale.append(doc)
            if not FLAGS.check:
                atomic.write_text(doc, new)
    if FLAGS.check and stale:
        cli.fail(f"Out of date: {', '.join(stale)}; run python tools/bench.py --render={path}")
    print(block if not FLAGS.check else f"up to date: {', '.join(FLAGS.docs)}")


def profile() -> None:
    """--profile: op tables of one case's variants (ebm_zoo.bench.profile; PyTorch ones through
    ebm_zoo.bench.runner.profile_torch_case)."""
    import tempfile

    from ebm_zoo.bench import profile as prof
    from ebm_zoo.bench import runner
    from ebm_zoo.utils import atomic

    suite = next(
        s for s in bench.SUITES for c in bench.suite_cases(s, quick=True) if c["case"] == FLAGS.profile
    )
    case = next(c for c in bench.suite_cases(suite, quick=FLAGS.quick) if c["case"] == FLAGS.profile)
    variants = FLAGS.variants or ["ebm_zoo_fp32", "ebm_zoo_bf16"]
    info = bench.machine_info()
    report = {
        "schema": "ebm_zoo.bench.profile/1",
        "command": bench.command_line(sys.argv, sys.executable),
        "machine": info,
        "load_before": os.getloadavg(),
        "tables": [],
        "skipped": {},
    }
    import importlib

    torch_known = importlib.import_module(bench.SUITES[suite]).variants(case).get("torch", [])
    torch_variants = [v for v in variants if v in torch_known]
    torch_env = bench.malloc_env(FLAGS.malloc)
    if torch_variants:
        report["torch_worker_env"] = torch_env
    with tempfile.TemporaryDirectory(prefix="ebm_zoo_profile_") as workdir:
        for v in variants:
            if v in torch_variants:
                continue
            try:
                res = prof.profile_case(case, v, FLAGS.profile_calls, info["cpu"]["flags"], workdir)
            except ValueError as e:
                report["skipped"][v] = str(e)
                print(f"{v}: skipped ({e})")
                continue
            res.pop("trace", None)
            report["tables"].append(res)
            print(prof.format_table(res) + "\n", flush=True)
        if torch_variants:
            tables, skipped = runner.profile_torch_case(
                case, torch_variants, FLAGS.profile_calls, info["cpu"]["flags"], workdir, env=torch_env
            )
            report["skipped"].update(skipped)
            for v, why in skipped.items():
                print(f"{v}: skipped ({why})")
            for res in tables:
                report["tables"].append(res)
                print(prof.format_table(res) + "\n", flush=True)
    report["load_after"] = os.getloadavg()
    if FLAGS.out:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
        atomic.write_json(FLAGS.out, report, indent=1, default=float)
        print(f"wrote {FLAGS.out}")


def main(argv):
    del argv
    if FLAGS.render:
        render(FLAGS.render)
        return
    if FLAGS.profile:
        profile()
        return
    from ebm_zoo.bench import runner
    from ebm_zoo.utils import atomic

    rounds = FLAGS.rounds or (2 if FLAGS.quick else 5)
    report = runner.run(
        FLAGS.suites,
        quick=FLAGS.quick,
        rounds=rounds,
        only=FLAGS.variants,
        case_filter=FLAGS.cases,
        command=bench.command_line(sys.argv, sys.executable),
        log=lambda s: print(s, flush=True),
        tf_env=_env(FLAGS.tf_env),
        torch_env=_env(FLAGS.torch_env),
        sampler_steps=FLAGS.steps,
        malloc=FLAGS.malloc,
    )
    if FLAGS.out:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
        atomic.write_json(FLAGS.out, report, indent=1, default=float)
        print(f"\nwrote {FLAGS.out}")


if __name__ == "__main__":
    # --render only reads a JSON file: no TensorFlow import (seconds per call).
    cli.run(main, check=check_flags, tensorflow=not any(a.startswith("--render") for a in sys.argv[1:]))
