"""OOD AUROC of every MNIST preset with `model.ood_score(method="typicality")` next to its default.

    python tools/experiments/ood_typicality.py                      # runs, writes JSON + doc table
    python tools/experiments/ood_typicality.py --presets=short_run_mnist --out=/tmp/t.json --doc=
    python tools/experiments/ood_typicality.py --attach             # and ships each fit with its preset
    python tools/experiments/ood_typicality.py --render_only        # table from the committed JSON
    python tools/experiments/ood_typicality.py --render_only --check

For each shipped MNIST preset: `ebm_zoo.evaluation.ood.fit_typicality` (the score's statistics
fitted on 4,000 MNIST train digits, seed 0), then `evaluate_ood` with the typicality score (the
settings of `tools/eval.py --protocol=mnist_ood --ood_method=typicality`). The default score's
AUROCs are read from each preset's metadata.json (`tools/eval.py --protocol=mnist_ood`). Writes
--out (docs/benchmarks/ood_typicality.json) and the table between `<!-- ood_typicality:begin -->`
and `<!-- ood_typicality:end -->` in --doc (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FLAGS = flags.FLAGS
MARKERS = ("<!-- ood_typicality:begin -->", "<!-- ood_typicality:end -->")
TARGET_SETS = ("noise", "constant", "textures", "faces", "photos")
flags.DEFINE_list("presets", None, "MNIST presets (default: every registered *_mnist preset).")
flags.DEFINE_string("out", str(REPO / "docs/benchmarks/ood_typicality.json"), "JSON written (or read).")
flags.DEFINE_string(
    "doc", str(REPO / "docs/benchmarks.md"), "Markdown file whose table is replaced; '' skips."
)
flags.DEFINE_integer("fit_images", 4000, "MNIST train digits the statistics are fitted on.", lower_bound=10)
flags.DEFINE_bool(
    "attach",
    False,
    "Also ship each fit with its preset: ebm_zoo/presets/weights/<name>/ood_fit.npz (sha256-listed in "
    "its metadata.json), which ebm_zoo.load then restores, so ood_score(method='typicality') works offline.",
)
flags.DEFINE_bool("render_only", False, "Run nothing: write the table of the --out JSON into --doc.")
flags.DEFINE_bool("check", False, "With --render_only: only check that the --doc table is up to date.")


def check_flags():
    from ebm_zoo.presets import PRESETS
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    unknown = [p for p in FLAGS.presets or () if p not in PRESETS]
    if FLAGS.attach and FLAGS.render_only:
        raise EbmZooError("--attach ships the fits of a run; it does not go with --render_only.")
    if unknown:
        raise EbmZooError(f"--presets names unregistered presets {unknown}; see ebm_zoo.list_presets().")
    if FLAGS.check and not FLAGS.render_only:
        raise EbmZooError("--check compares the table with the JSON; give it with --render_only.")
    if FLAGS.render_only and not os.path.isfile(FLAGS.out):
        raise EbmZooError(f"--out={FLAGS.out} does not exist; run without --render_only to write it.")
    if not FLAGS.render_only:
        checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")
    if FLAGS.doc:
        text = Path(FLAGS.doc).read_text() if os.path.isfile(FLAGS.doc) else ""
        if text.count(MARKERS[0]) != 1 or text.count(MARKERS[1]) != 1:
            raise EbmZooError(
                f"--doc={FLAGS.doc} must hold {MARKERS[0]!r} and then {MARKERS[1]!r}, once each "
                "(or pass --doc= to skip the table)."
            )


def run(names: list[str]) -> dict:
    import functools

    import ebm_zoo
    from ebm_zoo.evaluation import ood

    doc = {
        "command": "python tools/experiments/ood_typicality.py" + (" --attach" if FLAGS.attach else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {
            "fit_images": FLAGS.fit_images,
            "fit_split": "train",
            "seed": 0,
            "num_in": 2000,
            "num_per_set": 1000,
            "attached": FLAGS.attach,
        },
        "presets": {},
    }
    for name in names:
        model = ebm_zoo.load(name)
        t0 = time.process_time()
        fit = ood.fit_typicality(model, num=FLAGS.fit_images, seed=0)
        if FLAGS.attach:
            from ebm_zoo.presets import files, loader

            about = {
                "dataset": "mnist_local",
                "split": "train",
                "selection_seed": 0,
                "command": doc["command"],
            }
            files.attach_ood_fit(loader.package_dir(name), model, **about)
            print(f"attached the fit to {loader.package_dir(name) / files.OOD_FIT_FILE}")
        rep = ood.evaluate_ood(
            functools.partial(model.ood_score, method="typicality"), image_size=model.image_size
        )
        rep_default = ((model.preset_metadata or {}).get("metrics") or {}).get("mnist_ood") or {}
        default, method = rep_default.get("auroc"), rep_default.get("ood_method", "default")
        doc["presets"][name] = {
            "typicality": rep["auroc"],
            "default": default,
            "default_method": method,
            "fit": {k: fit[k] for k in ("num_reference", "bandwidth")},
            "cpu_seconds": round(time.process_time() - t0, 1),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        print(f"{name:<24} " + ", ".join(f"{k} {v:.3f}" for k, v in rep["auroc"].items()), flush=True)
    return doc


def table(doc: dict) -> str:
    sets = list(dict.fromkeys(k for p in doc["presets"].values() for k in p["typicality"]))
    lines = [
        f"Generated by `{doc['command']}` ({doc['date']}); JSON: docs/benchmarks/ood_typicality.json. "
        'Each cell: AUROC with `ood_score(method="typicality")` (fitted on '
        f"{doc['settings']['fit_images']:,} MNIST train digits), and in brackets with the family's default "
        "score (the table above). Bold: ≥ 0.99 on a set where the default score is below it; four decimals where "
        "three would round up to 0.990.",
        "",
        "| preset | " + " | ".join(sets) + " |",
        "|---" * (len(sets) + 1) + "|",
    ]
    for name, p in doc["presets"].items():
        cells = []
        for s in sets:
            t, d = p["typicality"].get(s), (p.get("default") or {}).get(s)
            text = "–" if t is None else f"{t:.4f}" if round(t, 3) >= 0.99 > t else f"{t:.3f}"
            if t is not None and d is not None and t >= 0.99 > d:
                text = f"**{text}**"
            cells.append(text + ("" if d is None else f" ({d:.3f})"))
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(doc: dict, path: str, check: bool) -> bool:
    from ebm_zoo.utils import atomic

    text = Path(path).read_text()
    head, rest = text.split(MARKERS[0], 1)
    _, tail = rest.split(MARKERS[1], 1)
    new = f"{head}{MARKERS[0]}\n{table(doc)}\n{MARKERS[1]}{tail}"
    if check:
        return new == text
    atomic.write_text(path, new)
    return True


def main(argv):
    del argv
    from ebm_zoo.utils import atomic

    if FLAGS.render_only:
        doc = json.loads(Path(FLAGS.out).read_text())
    else:
        from ebm_zoo.presets import PRESETS

        names = FLAGS.presets or [n for n in PRESETS if n.endswith("_mnist")]
        doc = run(names)
        if FLAGS.presets and os.path.isfile(FLAGS.out):  # a subset re-run keeps the other rows
            old = json.loads(Path(FLAGS.out).read_text())
            if old.get("settings", {}).get("fit_images") == FLAGS.fit_images:
                doc["presets"] = {**old.get("presets", {}), **doc["presets"]}
                doc["date"] = old.get("date", doc["date"])
        atomic.write_text(FLAGS.out, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {FLAGS.out}")
    if FLAGS.doc:
        if not write_table(doc, FLAGS.doc, FLAGS.check):
            print(
                f"Out of date: {FLAGS.doc}; run python tools/experiments/ood_typicality.py --render_only",
                file=sys.stderr,
            )
            return 1
        print(f"{'checked' if FLAGS.check else 'wrote'} the table in {FLAGS.doc}")
    return 0


if __name__ == "__main__":
    cli.run(main, check=check_flags)
