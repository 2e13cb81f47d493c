"""Which constant images the MNIST presets take for digits (the OOD set they miss most).

    python tools/experiments/ood_constant_levels.py
    python tools/experiments/ood_constant_levels.py --presets=short_run_mnist --out=/tmp/levels.json

For each shipped preset, `ebm_zoo.evaluation.ood.constant_levels` on its default `model.ood_score`:
the gray levels of the constant images scored inside the digits' range (below the 95th percentile
of 2,000 MNIST test digits' scores) and the constant set's AUROC with and without the near-black
images (level < 0.1). Writes --out (default docs/benchmarks/ood_constant_levels.json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ebm_zoo.utils import cli

cli.quiet_startup()

from absl import flags  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FLAGS = flags.FLAGS
flags.DEFINE_list(
    "presets",
    ["descriptor_mnist", "energy_matching_mnist", "short_run_mnist", "wgcn_mnist"],
    "Shipped presets to probe (their default ood_score).",
)
flags.DEFINE_string("out", str(REPO / "docs/benchmarks/ood_constant_levels.json"), "JSON file written.")


def check_flags():
    from ebm_zoo.utils import checks

    checks.check_output_dir(os.path.dirname(os.path.abspath(FLAGS.out)), "--out")


def main(argv):
    del argv
    import ebm_zoo
    from ebm_zoo.evaluation import ood
    from ebm_zoo.utils.atomic import atomic_write_text

    doc = {"command": "python tools/experiments/ood_constant_levels.py", "presets": {}}
    for name in FLAGS.presets:
        r = ood.constant_levels(ebm_zoo.load(name).ood_score)
        doc["presets"][name] = r
        print(
            f"{name:<24} AUROC constant {r['auroc']:.3f} (levels >= 0.1: {r['auroc_level_ge_0.1']:.3f}); "
            f"{r['num_inside']} of {r['settings']['num_constant']} inside the digits' 95 % range, "
            f"levels up to {r['inside_max_level']}",
            flush=True,
        )
    atomic_write_text(FLAGS.out, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    cli.run(main, check=check_flags)
