"""Quality of an Energy Matching model against its sampling time T, by the MNIST protocol.

    python tools/experiments/energy_matching_temperature.py --preset=energy_matching_mnist
    python tools/experiments/energy_matching_temperature.py --workdir=/work/runs_mnist/energy_matching_mnist \
        --T=1,1.5,2,3.25,4 --num_samples=1000          # a quick curve (not the standard 5,000)
    python tools/experiments/energy_matching_temperature.py --workdir=RUN --num_steps=10,20,40

For each final time T (`--T`, the paper's τ_s; or `--num_steps`, Heun steps of dt_gibbs, T = K·dt),
draws `--num_samples` samples with `model.sample(n, seed=..., t_end=T)` (chunks and seeds as the
MNIST protocol: ebm_zoo/metrics/mnist_protocol.py) and scores them with `run_mnist_protocol`
against the MNIST test images. Writes
  * `--out` (default docs/benchmarks/energy_matching_T.json): one row per T with the protocol's
    figures, the command, the model's sampler settings, the machine and its load;
  * `--sheets_dir`/T=<T>/report.json + samples.png: the protocol's report and 8×8 sheet per T;
  * the table of the rows into `--doc` (default docs/energy_matching.md) between the lines
    `<!-- energy_matching_T:begin -->` and `<!-- energy_matching_T:end -->` (`--doc=` skips it).
"""

from __future__ import annotations

import json
import os
import sys
import time

from ebm_zoo.utils import cli, machine

cli.quiet_startup()

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", None, "Energy Matching preset name or preset directory.")
flags.DEFINE_string("workdir", None, "Or: a tools/train.py run directory of an Energy Matching model.")
flags.DEFINE_list("T", ["1.0", "1.5", "2.0", "2.5", "3.25", "4.0"], "Final sampling times T.")
flags.DEFINE_list("num_steps", None, "Or: Heun step counts K (T = K * dt_gibbs); excludes --T.")
flags.DEFINE_integer("num_samples", 5000, "Samples per T (the protocol's 5,000; fewer for a quick curve).")
flags.DEFINE_integer("sample_batch", 250, "Images per sampler call.")
flags.DEFINE_integer("num_reference", None, "Use only the first n MNIST test images (default: all 10,000).")
flags.DEFINE_integer("seed", 0, "Protocol seed (sample chunks and KID subsets); the same for every T.")
flags.DEFINE_string("out", "docs/benchmarks/energy_matching_T.json", "JSON file of the rows.")
flags.DEFINE_string(
    "sheets_dir", "reports/energy_matching_T", "Directory for T=<T>/report.json + samples.png."
)
flags.DEFINE_string(
    "doc", "docs/energy_matching.md", "Markdown file whose marked table is replaced ('' = none)."
)

BEGIN, END = "<!-- energy_matching_T:begin -->", "<!-- energy_matching_T:end -->"
FIGURES = (
    "fd_mnist",
    "kid_mnist",
    "classifier_score",
    "effective_classes",
    "precision",
    "recall",
)


def _floats(values, name):
    from ebm_zoo.utils.checks import EbmZooError

    try:
        out = [float(v) for v in values]
    except ValueError as e:
        raise EbmZooError(f"{name} must be a comma-separated list of numbers, got {values!r}.") from e
    if not out or any(not v >= 0 for v in out):  # `not >=` also refuses nan
        raise EbmZooError(f"{name} must list one or more numbers >= 0, got {values!r}.")
    return out


def check_flags():
    """Validates the flags (no TensorFlow needed)."""
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    if bool(FLAGS.preset) == bool(FLAGS.workdir):
        raise EbmZooError("Give exactly one of --preset=NAME or --workdir=RUN (an Energy Matching model).")
    if FLAGS.num_steps is not None and FLAGS["T"].present:
        raise EbmZooError("Give either --T (final times) or --num_steps (Heun step counts), not both.")
    if FLAGS.num_steps is not None:
        steps = _floats(FLAGS.num_steps, "--num_steps")
        if any(s != int(s) for s in steps):
            raise EbmZooError(f"--num_steps must list whole numbers, got {FLAGS.num_steps!r}.")
    else:
        _floats(FLAGS.T, "--T")
    checks.check_count(FLAGS.num_samples, "--num_samples")
    checks.check_count(FLAGS.sample_batch, "--sample_batch")
    if FLAGS.num_reference is not None:
        checks.check_count(FLAGS.num_reference, "--num_reference")
    checks.check_seed(FLAGS.seed, "--seed")
    checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")
    checks.check_output_dir(FLAGS.sheets_dir, "--sheets_dir")
    if FLAGS.doc:
        _check_doc(FLAGS.doc)


def _check_doc(path: str) -> str:
    from ebm_zoo.utils.checks import EbmZooError

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise EbmZooError(
            f"--doc={path} cannot be read ({e.strerror}); give a Markdown file or --doc=''."
        ) from e
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise EbmZooError(
            f"--doc={path} must hold the lines {BEGIN} and {END} once each, in that order "
            "(the table goes between them); add them or pass --doc=''."
        )
    return text


def table(rows: list[dict]) -> str:
    """The Markdown table of the rows (one per T)."""
    head = "| T | Heun steps | FD_MNIST ↓ | KID ↓ | classifier score ↑ | classes ↑ | precision ↑ | recall ↑ | s / 100 samples |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['T']:g} | {r['num_steps']} | {r['fd_mnist']:.2f} | {r['kid_mnist']:.4f} | "
            f"{r['classifier_score']:.2f} | {r['effective_classes']:.2f} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r.get('sampling_cpu_seconds_per_100', float('nan')):.1f} |"
        )
    return "\n".join(lines)


def replace_table(text: str, body: str) -> str:
    """`text` with everything between the BEGIN and END lines replaced by `body`."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + body + "\n" + text[end:]


def _loadavg() -> list[str]:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return []


def main(argv):
    del argv
    import ebm_zoo
    from ebm_zoo.metrics import mnist_classifier, mnist_protocol
    from ebm_zoo.utils.atomic import atomic_write_text
    from ebm_zoo.utils.checks import EbmZooError

    handle = FLAGS.preset or FLAGS.workdir
    model = ebm_zoo.load(handle)
    if getattr(model, "family", None) != "energy_matching":
        raise EbmZooError(
            f"{handle!r} is a {getattr(model, 'family', type(model).__name__)!r} model; this tool needs an "
            "Energy Matching model (family 'energy_matching'), whose samples depend on a final time T."
        )
    if FLAGS.num_steps is not None:
        times = [int(k) * model.dt_gibbs for k in _floats(FLAGS.num_steps, "--num_steps")]
        steps = [int(k) for k in _floats(FLAGS.num_steps, "--num_steps")]
        for k in steps:
            model.check_overrides({"num_steps": k})
    else:
        times = _floats(FLAGS.T, "--T")
        steps = [model.steps_for(t) for t in times]  # refuses a T beyond max_sample_steps, before any work
    doc_text = _check_doc(FLAGS.doc) if FLAGS.doc else None
    extra = {} if FLAGS.num_reference is None else {"num_reference": FLAGS.num_reference}

    rows = []
    for t, k in zip(times, steps):

        def sample_fn(n, seed, k=k):
            return model.sample(n, seed=seed, num_steps=k)

        report = mnist_protocol.run_mnist_protocol(
            sample_fn,
            os.path.join(FLAGS.sheets_dir, f"T={t:g}"),
            f"{os.path.basename(os.path.normpath(handle))} T={t:g}",
            num_samples=FLAGS.num_samples,
            sample_batch=FLAGS.sample_batch,
            seed=FLAGS.seed,
            **extra,
        )
        row = {"T": round(t, 6), "num_steps": k}
        row.update({key: report[key] for key in (*FIGURES, "kid_mnist_std", "classifier_score_std")})
        row.update(
            {
                key: report[key]
                for key in ("class_fractions", "num_samples", "num_reference", "standard", "files")
                + ("sampling_wall_seconds", "sampling_cpu_seconds_per_100", "metric_seconds")
                if key in report
            }
        )
        rows.append(row)
        print(json.dumps({k2: row[k2] for k2 in ("T", "num_steps", *FIGURES)}), flush=True)

    doc = {
        "command": " ".join(["python", "tools/experiments/energy_matching_temperature.py", *sys.argv[1:]]),
        "model": handle,
        "sampler": model.sampler_settings(),
        "protocol": mnist_protocol.PROTOCOL,
        "classifier_sha256": mnist_classifier.WEIGHTS_SHA256,
        "rows": rows,
        "machine": {"cpu": machine.cpu_name(), "cpus": os.cpu_count(), "loadavg_at_end": _loadavg()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    atomic_write_text(FLAGS.out, json.dumps(doc, indent=2) + "\n")
    print(f"Wrote {FLAGS.out}")
    if doc_text is not None:
        note = (
            f"`{doc['command']}` — {rows[0]['num_samples']} samples per T"
            f"{'' if rows[0]['standard'] else ' (not the standard protocol)'}, "
            f"dt = {model.dt_gibbs:g}, {doc['date']}, load {' / '.join(doc['machine']['loadavg_at_end'])}:"
        )
        atomic_write_text(FLAGS.doc, replace_table(doc_text, note + "\n\n" + table(rows)))
        print(f"Updated the table in {FLAGS.doc}")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
