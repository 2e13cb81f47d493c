"""The MNIST benchmark table and gallery, built from the shipped presets' metadata.json.

    python tools/experiments/mnist_table.py                 # table JSON, docs + README tables, gallery
    python tools/experiments/mnist_table.py --nogallery     # figures only (no model is sampled; the
                                                            # README's gallery block is left as it is)

Rows, in this order:
  * the reference rows of docs/benchmarks/mnist_reference.json (floor, per-pixel Gaussian, blur;
    `python tools/experiments/mnist_reference.py`);
  * every registered preset whose name ends in `_mnist`: its figures are the ones stored in its
    metadata.json by `tools/export.py --preset=NAME --reports=...` (the MNIST protocol report of
    `tools/eval.py --protocol=mnist`, the OOD AUROCs, the training wall-clock); a preset without
    weights is listed as "no weights (see its config)" and a preset whose metadata holds no protocol figures
    as "weights, no protocol report" — no number is ever filled in from elsewhere;
  * the TorchEBM peer row of docs/benchmarks/torchebm_mnist.json when that file exists
    (`python tools/experiments/torchebm_mnist.py`).

Writes --out_json (default docs/benchmarks/mnist_table.json), replaces the text between
`<!-- mnist_table:begin -->` and `<!-- mnist_table:end -->` in --docs (docs/benchmarks.md) and
--readme (README.md), and, unless --nogallery, one 8x8 grid per preset with weights,
`ebm_zoo.utils.images.save_grid(ebm_zoo.load(name).sample(64, seed=0), <gallery_dir>/<name>.png)`,
shown between `<!-- mnist_gallery:begin -->` / `<!-- mnist_gallery:end -->` in the README.
Default paths are inside this checkout, wherever the command runs from.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FLAGS = flags.FLAGS
flags.DEFINE_list("presets", None, "Presets to list (default: every registered preset ending in _mnist).")
flags.DEFINE_string(
    "reference", str(REPO / "docs/benchmarks/mnist_reference.json"), "Reference rows (floor, baselines)."
)
flags.DEFINE_string(
    "peer", str(REPO / "docs/benchmarks/torchebm_mnist.json"), "TorchEBM peer row (skipped if absent)."
)
flags.DEFINE_string(
    "typicality",
    str(REPO / "docs/benchmarks/ood_typicality.json"),
    "AUROCs of ood_score(method='typicality') (tools/experiments/ood_typicality.py), shown next to the "
    "default score's ('' or a missing file: not shown).",
)
flags.DEFINE_string(
    "length",
    str(REPO / "docs/benchmarks/short_run_mnist_length.json"),
    "short_run_mnist scored at several lengths: its row at the TorchEBM peer's CPU-s budget is shown "
    "next to the peer ('' or a missing file: not shown).",
)
flags.DEFINE_string("out_json", str(REPO / "docs/benchmarks/mnist_table.json"), "The table as JSON.")
flags.DEFINE_string(
    "docs", str(REPO / "docs/benchmarks.md"), "Markdown file with the mnist_table markers ('' = none)."
)
flags.DEFINE_string(
    "readme", str(REPO / "README.md"), "README with the mnist_table / mnist_gallery markers ('' = none)."
)
flags.DEFINE_string("gallery_dir", str(REPO / "docs/gallery"), "Where <preset>.png grids are written.")
flags.DEFINE_bool("gallery", True, "Sample an 8x8 grid (seed 0) of every preset with weights.")
flags.DEFINE_integer("seed", 0, "Seed of the gallery grids.")

TABLE_MARKERS = ("<!-- mnist_table:begin -->", "<!-- mnist_table:end -->")
GALLERY_MARKERS = ("<!-- mnist_gallery:begin -->", "<!-- mnist_gallery:end -->")
#: Optional in --docs: the --length JSON as a table (one run scored at several lengths).
LENGTH_MARKERS = ("<!-- short_run_length:begin -->", "<!-- short_run_length:end -->")
REFERENCE_LABELS = {
    "floor": "floor: 5,000 MNIST train images",
    "gaussian": "baseline: per-pixel Gaussian",
    "blur": "baseline: train images, 7×7 box blur",
}
FIGURES = (
    "fd_mnist",
    "kid_mnist",
    "kid_mnist_std",
    "classifier_score",
    "effective_classes",
    "precision",
    "recall",
    "sampling_cpu_seconds_per_100",
)
NOT_TRAINED = "no weights (see its config)"
NO_REPORT = "weights, no protocol report in metadata.json"


def mnist_presets() -> list[str]:
    from ebm_zoo.presets import PRESETS

    return [n for n in PRESETS if n.endswith("_mnist")]


def check_flags():
    """Validates the flags (no TensorFlow needed)."""
    from ebm_zoo.presets import PRESETS
    from ebm_zoo.utils import checks
    from ebm_zoo.utils.checks import EbmZooError

    unknown = [p for p in FLAGS.presets or () if p not in PRESETS]
    if unknown:
        raise EbmZooError(
            f"--presets names unregistered presets {unknown}; registered MNIST presets: "
            f"{', '.join(mnist_presets())}."
        )
    if not os.path.isfile(FLAGS.reference):
        raise EbmZooError(
            f"--reference={FLAGS.reference} does not exist; write it with python tools/experiments/mnist_reference.py."
        )
    checks.check_seed(FLAGS.seed, "--seed")
    checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out_json)), "--out_json")
    if FLAGS.gallery:
        checks.check_output_dir(FLAGS.gallery_dir, "--gallery_dir")
    for flag, markers in (("docs", (TABLE_MARKERS,)), ("readme", (TABLE_MARKERS, GALLERY_MARKERS))):
        path = FLAGS[flag].value
        if path:
            text = _read(path, f"--{flag}")
            for m in markers:
                _check_markers(text, m, path)


def _read(path: str, what: str) -> str:
    from ebm_zoo.utils.checks import EbmZooError

    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise EbmZooError(f"{what}={path} cannot be read: {e.strerror or e}.") from None


def _check_markers(text: str, markers: tuple[str, str], path: str) -> None:
    from ebm_zoo.utils.checks import EbmZooError

    begin, end = markers
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise EbmZooError(
            f"{path} must hold the lines {begin!r} and {end!r} once each, in this order; the generated "
            "text is written between them. Add them where the table belongs."
        )


# ----------------------------------------------------------------------------------------------
# Rows.


def preset_row(name: str, *, gallery_dir: str | None, seed: int = 0) -> dict:
    """One model row from a preset's metadata.json (and its gallery grid when `gallery_dir`)."""
    import ebm_zoo
    from ebm_zoo import presets

    info = presets.get_preset(name)
    row = {"name": name, "kind": "preset", "family": info.family, "config": info.config}
    status = presets.weights_status(name)
    row["weights"] = status
    if status == "none":
        return {**row, "status": NOT_TRAINED}
    model = ebm_zoo.load(name)
    meta = model.preset_metadata
    mnist = (meta.get("metrics") or {}).get("mnist")
    ood = (meta.get("metrics") or {}).get("mnist_ood")
    timing = meta.get("training_time") or {}
    row.update(
        status="measured" if mnist else NO_REPORT,
        training_steps=meta.get("training_steps"),
        training_wall_seconds=timing.get("wall_seconds"),
        training_cpu_seconds=timing.get("cpu_seconds"),
        training_time_complete=timing.get("complete"),
        weights_bytes=meta.get("weights_bytes"),
    )
    if mnist:
        row.update({k: mnist.get(k) for k in FIGURES})
        row.update(standard=bool(mnist.get("standard")), num_samples=mnist.get("num_samples"))
        row["machine"] = (mnist.get("machine") or {}).get("cpu")
        row["class_fractions"] = mnist.get("class_fractions")
    if ood:
        row["ood_auroc"] = dict(ood["auroc"])
        if ood.get("ood_method", "default") != "default":
            row["ood_method"] = ood["ood_method"]
    if gallery_dir is not None:
        path = os.path.join(gallery_dir, f"{name}.png")
        ebm_zoo.utils.images.save_grid(model.sample(64, seed=seed), path)
        row["gallery"] = path
    return row


def reference_rows(path: str) -> list[dict]:
    from ebm_zoo.presets.files import read_json

    doc = read_json(Path(path), "The MNIST reference rows")
    rows = []
    for kind, label in REFERENCE_LABELS.items():
        fig = (doc.get("rows") or {}).get(kind)
        if fig is None:
            continue
        rows.append(
            {
                "name": kind,
                "kind": "reference",
                "label": label,
                "status": "measured",
                "standard": bool(fig.get("standard")),
                **{k: fig.get(k) for k in FIGURES},
            }
        )
    return rows


def _read_json_or_empty(path: str) -> dict:
    from ebm_zoo.presets.files import read_json

    return read_json(Path(path), "JSON") if path and os.path.isfile(path) else {}


def peer_row(path: str) -> dict | None:
    """The TorchEBM row of tools/experiments/torchebm_mnist.py, or None when the file is absent."""
    from ebm_zoo.presets.files import read_json

    if not path or not os.path.isfile(path):
        return None
    doc = read_json(Path(path), "The TorchEBM peer row")
    fig = doc.get("figures") or {}
    training = doc.get("training") or {}
    return {
        "name": "torchebm_short_run",
        "kind": "peer",
        "label": f"peer: TorchEBM {doc.get('torchebm_version', '?')} short-run EBM",
        "status": "measured",
        "standard": bool(fig.get("standard")),
        "num_samples": fig.get("num_samples"),
        **{k: fig.get(k) for k in FIGURES},
        "training_wall_seconds": training.get("wall_seconds"),
        "training_cpu_seconds": training.get("cpu_seconds"),
        "training_time_complete": True,
        "machine": (doc.get("machine") or {}).get("cpu"),
    }


def length_table(length_path: str) -> str:
    """The --length JSON as markdown: one row per scored length of the run."""
    from ebm_zoo.presets.files import read_json

    doc = read_json(Path(length_path), "The short_run_mnist length table")
    lines = [
        f"Generated by `python tools/experiments/mnist_table.py` from {os.path.relpath(length_path, REPO)} "
        f"({doc.get('note', '')}); each row `tools/eval.py --protocol=mnist` of the run at that length.",
        "",
        "| iterations | training CPU-s | FD-MNIST | KID | classifier score | eff. classes | precision | recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc.get("rows") or []:
        f, cpu = r.get("report") or {}, (r.get("training") or {}).get("cpu_seconds")
        lines.append(
            f"| {r['iterations']:,} | {_f(cpu, ',.0f')} | {_f(f.get('fd_mnist'), '.3g')} "
            f"| {_f(f.get('kid_mnist'), '.3g')} | {_f(f.get('classifier_score'), '.2f')} "
            f"| {_f(f.get('effective_classes'), '.2f')} | {_f(f.get('precision'), '.2f')} | {_f(f.get('recall'), '.2f')} |"
        )
    return "\n".join(lines)


def equal_budget_row(length_path: str, peer: dict | None, budget_cpu_seconds: float | None) -> dict | None:
    """The row of the length JSON whose training CPU-s equals the peer's budget (within 1 %),
    labelled as such, or None (no file, no peer, or no row at that budget)."""
    from ebm_zoo.presets.files import read_json

    if not length_path or not os.path.isfile(length_path) or peer is None or not budget_cpu_seconds:
        return None
    doc = read_json(Path(length_path), "The short_run_mnist length table")
    for r in doc.get("rows") or []:
        cpu = (r.get("training") or {}).get("cpu_seconds")
        if cpu and abs(cpu - budget_cpu_seconds) <= 0.01 * budget_cpu_seconds:
            fig = r.get("report") or {}
            return {
                "name": f"short_run_mnist@{r['iterations']}",
                "kind": "equal_budget",
                "label": f"short_run at the peer's budget (`short_run_mnist` run at {r['iterations']:,} "
                f"iterations, {cpu:,.0f} CPU-s)",
                "status": "measured",
                "standard": bool(fig.get("standard")),
                "num_samples": fig.get("num_samples"),
                **{k: fig.get(k) for k in FIGURES},
                "training_wall_seconds": r["training"].get("wall_seconds"),
                "training_cpu_seconds": cpu,
                "training_time_complete": True,
                "machine": (fig.get("machine") or {}).get("cpu"),
            }
    return None


# ----------------------------------------------------------------------------------------------
# Markdown.


def _f(v, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def _duration(seconds, complete) -> str:
    if seconds is None:
        return "–"
    s = float(seconds)
    text = f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s"
    return text if complete else f"≥ {text}"


def _label(row: dict) -> str:
    if row["kind"] == "preset":
        return f"{row['family']} (`{row['name']}`)"
    return row["label"]


def markdown_table(rows: list[dict]) -> str:
    head = (
        "| row | FD-MNIST ↓ | KID ↓ | classifier score ↑ | effective classes ↑ | precision ↑ | recall ↑ "
        "| sampling CPU-s / 100 images | training wall-clock | measured on |\n" + "|---" * 10 + "|"
    )
    lines = [head]
    for r in rows:
        if r["status"] != "measured":
            lines.append(f"| {_label(r)} | {r['status']} |  |  |  |  |  |  |  |  |")
            continue
        mark = "" if r.get("standard") else " †"
        kid = (
            "–" if r.get("kid_mnist") is None else f"{r['kid_mnist']:.3g} ± {r.get('kid_mnist_std') or 0:.2g}"
        )
        lines.append(
            f"| {_label(r)}{mark} | {_f(r.get('fd_mnist'), '.3g')} | {kid} | {_f(r.get('classifier_score'), '.2f')} "
            f"| {_f(r.get('effective_classes'), '.2f')} | {_f(r.get('precision'), '.3f')} | {_f(r.get('recall'), '.3f')} "
            f"| {_f(r.get('sampling_cpu_seconds_per_100'), '.3g')} "
            f"| {_duration(r.get('training_wall_seconds'), r.get('training_time_complete'))} "
            f"| {r.get('machine') or '–'} |"
        )
    return "\n".join(lines)


def _typicality_cell(value) -> str:
    """An AUROC of the typicality score: bold when it meets the 0.99 target; four decimals when
    three would round a miss up to 0.990."""
    if value is None:
        return "–"
    text = f"{value:.4f}" if round(value, 3) >= 0.99 > value else f"{value:.3f}"
    return f"**{text}**" if value >= 0.99 else text


def markdown_ood(rows: list[dict]) -> str:
    with_ood = [r for r in rows if r.get("ood_auroc")]
    if not with_ood:
        return "No OOD AUROCs yet (no MNIST preset with weights and an `ood.json` in its metadata)."
    sets = list(dict.fromkeys(k for r in with_ood for k in r["ood_auroc"]))
    both = any(r.get("ood_auroc_typicality") for r in with_ood)
    lines = ["| preset | " + " | ".join(sets) + " |", "|---" * (len(sets) + 1) + "|"]
    for r in with_ood:
        cells = []
        for s in sets:
            cell = _f(r["ood_auroc"].get(s), ".3f")
            if both:
                cell += " / " + _typicality_cell((r.get("ood_auroc_typicality") or {}).get(s))
            cells.append(cell)
        lines.append(
            f"| `{r['name']}`{' (' + r['ood_method'] + ' score)' if r.get('ood_method') else ''} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def table_block(rows: list[dict], doc: dict) -> str:
    machine = doc["machine"]
    return "\n".join(
        [
            f"Generated by `{doc['command']}` on {doc['date']} from the presets' metadata.json, "
            "docs/benchmarks/mnist_reference.json and docs/benchmarks/torchebm_mnist.json (when present). "
            "Every measured row: 5,000 samples (seed 0) vs the 10,000 MNIST test images unless marked † "
            "(non-standard settings). Sampling CPU-s and training wall-clock were measured "
            "under the load of other jobs (not quiet-machine figures), on the CPU in the last column; "
            f"this table was written on {machine['cpu']} ({machine['cpus']} cores).",
            "",
            markdown_table(rows),
            "",
            "Out-of-distribution AUROC of `model.ood_score` (MNIST test vs each set; `--protocol=mnist_ood`; "
            "a score named in brackets is `--ood_method`, not the family's default)"
            + (
                ', then after the slash with `method="typicality"` and the preset\'s shipped fit '
                "(docs/benchmarks/ood_typicality.json; bold: ≥ 0.99):"
                if any(r.get("ood_auroc_typicality") for r in rows)
                else ":"
            ),
            "",
            markdown_ood(rows),
        ]
    )


def gallery_block(rows: list[dict], readme_dir: str) -> str:
    shown = [r for r in rows if r.get("gallery")]
    if not shown:
        return "No MNIST preset has weights yet, so there is no gallery."
    cells = []
    for r in shown:
        rel = os.path.relpath(os.path.abspath(r["gallery"]), os.path.abspath(readme_dir))
        cells.append(f'<img src="{rel}" width="196" alt="{r["name"]}"><br>`{r["name"]}`')
    lines = []
    for i in range(0, len(cells), 4):
        lines.append("| " + " | ".join(cells[i : i + 4]) + " |")
        if i == 0:
            lines.append("|---" * len(cells[:4]) + "|")
    return (
        "`ebm_zoo.utils.images.save_grid(ebm_zoo.load(NAME).sample(64, seed=0), ...)` for every MNIST preset "
        "with weights (fresh samples, not training chains):\n\n" + "\n".join(lines)
    )


def replace_between(text: str, markers: tuple[str, str], body: str) -> str:
    begin, end = markers
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def _machine() -> dict:
    from ebm_zoo.utils import machine

    return {"cpu": machine.cpu_name(), "cpus": os.cpu_count(), "loadavg_at_end": machine.loadavg()}


def build(
    names: list[str],
    *,
    reference: str,
    peer: str | None,
    out_json: str,
    typicality: str | None = None,
    length: str | None = None,
    docs: str | None,
    readme: str | None,
    gallery_dir: str | None,
    seed: int = 0,
) -> dict:
    """Builds every row, writes the JSON, the markdown blocks and the gallery; returns the JSON."""
    from ebm_zoo.utils import atomic

    rows = reference_rows(reference)
    models = [preset_row(n, gallery_dir=gallery_dir, seed=seed) for n in names]
    rows += models
    if typicality and os.path.isfile(typicality):
        fits = json.loads(Path(typicality).read_text()).get("presets") or {}
        for r in models:
            if r["name"] in fits and r.get("ood_auroc"):
                r["ood_auroc_typicality"] = dict(fits[r["name"]]["typicality"])
    peer_r = peer_row(peer) if peer else None
    if peer_r is not None:
        budget = (_read_json_or_empty(peer).get("budget") or {}).get("cpu_seconds")
        same = equal_budget_row(length, peer_r, budget) if length else None
        if same is not None:
            rows.append(same)
        rows.append(peer_r)
    doc = {
        "command": "python tools/experiments/mnist_table.py",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": _machine(),
        "rows": rows,
    }
    block = table_block(rows, doc)
    for path, with_gallery in ((docs, False), (readme, True)):
        if not path:
            continue
        text = replace_between(_read(path, path), TABLE_MARKERS, block)
        if length and os.path.isfile(length) and LENGTH_MARKERS[0] in text and LENGTH_MARKERS[1] in text:
            text = replace_between(text, LENGTH_MARKERS, length_table(length))
        if with_gallery and gallery_dir is not None:  # --nogallery leaves the README's gallery as it is
            text = replace_between(text, GALLERY_MARKERS, gallery_block(models, os.path.dirname(path) or "."))
        atomic.write_text(path, text)
    for r in rows:  # gallery paths inside the checkout are stored relative to it
        if r.get("gallery") and Path(r["gallery"]).resolve().is_relative_to(REPO):
            r["gallery"] = str(Path(r["gallery"]).resolve().relative_to(REPO))
    atomic.write_json(out_json, doc, indent=2)
    return doc


def main(argv):
    del argv
    names = FLAGS.presets or mnist_presets()
    doc = build(
        names,
        reference=FLAGS.reference,
        peer=FLAGS.peer,
        out_json=FLAGS.out_json,
        typicality=FLAGS.typicality or None,
        length=FLAGS.length or None,
        docs=FLAGS.docs or None,
        readme=FLAGS.readme or None,
        gallery_dir=FLAGS.gallery_dir if FLAGS.gallery else None,
        seed=FLAGS.seed,
    )
    for r in doc["rows"]:
        fig = (
            f"FD-MNIST {r['fd_mnist']:.3g}, score {r['classifier_score']:.2f}"
            if r["status"] == "measured"
            else ""
        )
        print(f"{r['name']:<24} {r['status']:<12} {fig}")
    print(f"Wrote {FLAGS.out_json}" + "".join(f", {p}" for p in (FLAGS.docs, FLAGS.readme) if p))


if __name__ == "__main__":
    cli.run(main, check=check_flags)
