"""The preset table of docs/zoo.md and the shipped-weights total of the README, from the registry.

    python tools/experiments/preset_table.py            # rewrite both
    python tools/experiments/preset_table.py --check    # exit 1 (and say what) if either is stale

Every registered preset (ebm_zoo.presets.PRESETS, sorted by family then name): family, config,
data set, image size, weights (shipped: size and sha256 prefix of model.weights.h5; else how to get
them), trainable parameters (metadata.json) and description. The total is the size of every
file in the shipped preset directories (weights, config, metadata, OOD fit). Written between `<!-- preset_table:begin -->` / `<!-- preset_table:end -->`
in docs/zoo.md and `<!-- weights_mib:begin -->` / `<!-- weights_mib:end -->` in the README.
No TensorFlow is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FLAGS = flags.FLAGS
flags.DEFINE_string("doc", str(REPO / "docs/zoo.md"), "File with the preset_table markers.")
flags.DEFINE_string("readme", str(REPO / "README.md"), "File with the weights_mib markers.")
flags.DEFINE_bool("check", False, "Only check that both files are up to date (exit 1 if not).")

TABLE = ("<!-- preset_table:begin -->", "<!-- preset_table:end -->")
MIB = ("<!-- weights_mib:begin -->", "<!-- weights_mib:end -->")


def rows() -> tuple[list[str], int, int]:
    """(markdown lines, bytes of shipped weights, number of shipped presets)."""
    from ebm_zoo.presets import PRESETS, loader

    lines = [
        "| preset | family | config | dataset | size | weights | params (trainable) | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    total = shipped = 0
    for name, info in sorted(PRESETS.items(), key=lambda kv: (kv[1].family, kv[0])):
        params = "—"
        if info.weights == "package":
            d = loader.package_dir(name)
            size = (d / "model.weights.h5").stat().st_size
            # The total counts every file of the preset: weights, config, metadata, OOD fit.
            total += sum(f.stat().st_size for f in d.iterdir() if f.is_file())
            shipped += 1
            weights = f"shipped, {size / 1024:,.0f} KiB, sha256 `{info.sha256[:12]}…`"
            meta = json.loads((d / "metadata.json").read_text(encoding="utf-8"))
            count = (meta.get("parameter_count") or {}).get("trainable")
            params = f"{count:,}" if isinstance(count, int) else "—"
        elif info.weights:
            weights = f"published: {info.weights}"
        else:
            weights = f"none: `python tools/train.py --model={info.config}`, then tools/export.py"
        lines.append(
            f"| `{name}` | {info.family} | `{info.config}` | {info.dataset} | {info.image_size} | "
            f"{weights} | {params} | {info.description} |"
        )
    return lines, total, shipped


def replace_between(text: str, markers: tuple[str, str], body: str, path: str) -> str:
    from ebm_zoo.utils.checks import EbmZooError

    begin, end = markers
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise EbmZooError(f"{path} must hold {begin!r} and then {end!r}, once each.")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}{body}{end}{tail}"


def main(argv):
    del argv
    from ebm_zoo.utils import atomic

    lines, total, shipped = rows()
    mib = f"{total / 2**20:.1f} MiB"
    table = (
        "\n"
        + "\n".join(lines)
        + f"\n\nShipped preset files in total: {mib} ({shipped} presets; weights, configs, metadata and "
        "the MNIST presets' OOD fits).\n"
    )
    stale = []
    for path, markers, body in ((FLAGS.doc, TABLE, table), (FLAGS.readme, MIB, mib)):
        text = Path(path).read_text(encoding="utf-8")
        new = replace_between(text, markers, body, path)
        if new != text:
            stale.append(path)
            if not FLAGS.check:
                atomic.write_text(path, new)
    if FLAGS.check and stale:
        cli.fail(
            f"Out of date: {', '.join(stale)} (shipped weights {mib}); run "
            "python tools/experiments/preset_table.py"
        )
    print(f"{shipped} shipped presets, {mib}; " + (f"updated {', '.join(stale)}" if stale else "up to date"))


if __name__ == "__main__":
    cli.run(main, tensorflow=False)
