"""MNIST protocol rows of training runs side by side with the training budget each one used.

    python tools/experiments/equal_budget.py \
        --rows=/work/runs_mnist/energy_matching_mnist,/work/runs_mnist/vapo_mnist@1000 \
        --reports=/work/runs_mnist/reports

Each row is a run directory (the finished run) or RUN@STEP (the run at its training checkpoint
STEP). Its figures are read, never measured here, from the reports of tools/eval.py:

  RUN       <reports>/<run name>/report.json and ood.json
            (tools/eval.py --workdir=RUN --protocol=mnist|mnist_ood --out=<reports>/<run name>,
            what tools/experiments/train_mnist_presets.sh runs)
  RUN@STEP  <reports>/<run name>_ckpt<STEP>/report.json and ood.json
            (tools/eval.py --workdir=RUN --checkpoint=STEP --protocol=... --out=that directory)

and its budget from the run: training CPU seconds (all cores) and wall-clock up to the end of the
run (timing.json) or up to STEP (the report's `checkpoint` record, from timing.json's history). A
missing report.json stops the tool with the eval command that writes it; a missing ood.json
leaves that row's AUROCs as "–", with the command under the table. Writes --out_json and the
table between `<!-- equal_budget:begin -->` and `<!-- equal_budget:end -->` in --doc.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

FLAGS = flags.FLAGS
flags.DEFINE_list("rows", None, "Runs, each RUN or RUN@STEP (a training checkpoint).")
flags.DEFINE_string("reports", None, "Directory holding <run>[_ckpt<STEP>]/report.json and ood.json.")
flags.DEFINE_string(
    "out_json", str(REPO / "docs/benchmarks/energy_matching_equal_budget.json"), "The table as JSON."
)
flags.DEFINE_string(
    "doc", str(REPO / "docs/energy_matching.md"), "Markdown file with the equal_budget markers ('' = none)."
)

MARKERS = ("<!-- equal_budget:begin -->", "<!-- equal_budget:end -->")
FIGURES = ("fd_mnist", "kid_mnist", "classifier_score", "effective_classes", "precision", "recall")
OOD_SETS = ("noise", "constant", "inverted", "textures", "faces", "photos")


def parse_row(spec: str) -> tuple[Path, int | None]:
    """'RUN' or 'RUN@STEP' -> (run directory, step or None); EbmZooError on a bad spec."""
    from ebm_zoo.utils.checks import EbmZooError

    run, _, step = spec.partition("@")
    if not run or (step and not step.isdigit()) or step == "0":
        raise EbmZooError(f"--rows entry {spec!r} is not RUN or RUN@STEP (STEP an integer >= 1).")
    path = Path(run)
    if not (path / "config.json").is_file():
        raise EbmZooError(f"--rows entry {spec!r}: {path} is not a tools/train.py run (no config.json).")
    return path, int(step) if step else None


def build_row(run: Path, step: int | None, reports: Path) -> dict:
    from ebm_zoo.presets import files
    from ebm_zoo.utils.checks import EbmZooError

    name = run.name if step is None else f"{run.name}_ckpt{step}"
    where = reports / name
    flag = "" if step is None else f" --checkpoint={step}"

    def command(protocol):
        return f"python tools/eval.py --workdir={run}{flag} --protocol={protocol} --out={where}"

    if not (where / "report.json").is_file():
        raise EbmZooError(f"No {where / 'report.json'}; write it with: {command('mnist')}")
    rep = files.read_json(where / "report.json", "MNIST protocol report")
    # A row without its OOD report is kept, its AUROCs shown as "–" with the command that writes them.
    has_ood = (where / "ood.json").is_file()
    ood = files.read_json(where / "ood.json", "MNIST OOD report") if has_ood else {}
    if step is None:
        t = files.training_time(run) or {}
        budget = {
            "step": t.get("step"),
            "train_cpu_seconds": t.get("cpu_seconds"),
            "train_wall_seconds": t.get("wall_seconds"),
            "complete": t.get("complete"),
        }
    else:
        at = rep.get("checkpoint") or {}
        if at.get("step") != step:
            raise EbmZooError(
                f"{where / 'report.json'} is not the report of checkpoint {step} (its checkpoint record: "
                f"{at or 'none'}); re-run python tools/eval.py --workdir={run} --checkpoint={step} "
                f"--protocol=mnist --out={where}"
            )
        budget = {**at, "complete": at.get("train_cpu_seconds") is not None}
    family = (files.read_json(run / "config.json", "The run's config").get("model") or {}).get("family")
    return {
        "row": run.name if step is None else f"{run.name}@{step}",
        "family": family,
        "budget": budget,
        "mnist": {k: rep.get(k) for k in (*FIGURES, "sampling_cpu_seconds_per_100", "num_samples")},
        "ood_auroc": {k: (ood.get("auroc") or {}).get(k) for k in OOD_SETS},
        "ood_missing": None if has_ood else command("mnist_ood"),
        "reports": str(where),
    }


def _f(v, fmt):
    return "–" if v is None else format(v, fmt)


def markdown(rows: list[dict]) -> str:
    head = (
        "| row | training CPU-s (wall) at that point | FD-MNIST ↓ | KID ↓ | classifier score ↑ | "
        "effective classes ↑ | precision | recall | sampling CPU-s / 100 | OOD AUROC "
        + " / ".join(OOD_SETS)
        + " |\n|"
        + "---|" * 10
    )
    lines = [head]
    for r in rows:
        b, m = r["budget"], r["mnist"]
        wall = b.get("train_wall_seconds")
        budget = f"{_f(b.get('train_cpu_seconds'), ',.0f')} ({_f(wall and wall / 60, '.0f')} min)"
        if not b.get("complete"):
            budget += " ≥"
        ood = " / ".join(_f(r["ood_auroc"].get(k), ".3f") for k in OOD_SETS)
        lines.append(
            f"| `{r['row']}` ({r['family']}, step {b.get('step')}) | {budget} | {_f(m['fd_mnist'], '.0f')} | "
            f"{_f(m['kid_mnist'], '.1f')} | {_f(m['classifier_score'], '.2f')} | "
            f"{_f(m['effective_classes'], '.2f')} | {_f(m['precision'], '.3f')} | {_f(m['recall'], '.3f')} | "
            f"{_f(m['sampling_cpu_seconds_per_100'], '.2f')} | {ood} |"
        )
    missing = [r for r in rows if r.get("ood_missing")]
    if missing:
        lines.append("")
        for r in missing:
            lines.append(f"OOD not measured for `{r['row']}` (write it with `{r['ood_missing']}`).")
    return "\n".join(lines)


def main(argv):
    del argv
    from ebm_zoo.utils import atomic
    from ebm_zoo.utils.checks import EbmZooError

    if not FLAGS.rows or not FLAGS.reports:
        raise EbmZooError("Give --rows=RUN[@STEP],... and --reports=DIR; see --help.")
    specs = [parse_row(s) for s in FLAGS.rows]
    doc = Path(FLAGS.doc) if FLAGS.doc else None
    if doc is not None:
        text = doc.read_text(encoding="utf-8")
        if text.count(MARKERS[0]) != 1 or text.count(MARKERS[1]) != 1:
            raise EbmZooError(f"{doc} must hold {MARKERS[0]!r} and {MARKERS[1]!r} once each.")
    rows = [build_row(run, step, Path(FLAGS.reports)) for run, step in specs]
    out = {"command": " ".join(["python tools/experiments/equal_budget.py", *sys.argv[1:]]), "rows": rows}
    atomic.write_text(FLAGS.out_json, json.dumps(out, indent=2) + "\n")
    table = markdown(rows)
    if doc is not None:
        head, rest = text.split(MARKERS[0], 1)
        _, tail = rest.split(MARKERS[1], 1)
        block = (
            f"Generated by `{out['command']}` from the tools/eval.py reports named in "
            f"{Path(FLAGS.out_json).name}.\n\n{table}"
        )
        atomic.write_text(doc, f"{head}{MARKERS[0]}\n{block}\n{MARKERS[1]}{tail}")
    print(table)


if __name__ == "__main__":
    cli.run(main, tensorflow=False)
