"""The preset registry: every family folder's presets (ebm_zoo/models/<family>/<family>_presets.py).

A preset is a trained (or trainable) model with a name. Each entry says:

  description   one line
  family        model family (the folder that registers it, ebm_zoo.models.registry)
  config        experiment config in configs/ that trains it (`tools/train.py --model=<config>`)
  dataset       data set it is trained and evaluated on (ebm_zoo.data name)
  image_size    H = W of its images
  weights       where the official weights live: "package" (shipped inside ebm_zoo under
                presets/weights/<name>/), a URI (file://, https://, gs://) of a preset directory,
                or None (no published weights: train them, see `ebm_zoo.load`'s error message)
  sha256        sha256 of the official model.weights.h5, or None when `weights` is None

Weights a user trains and exports with `tools/export.py --preset=<name>` live in
`$EBM_ZOO_HOME/presets/<name>/` and are checked against their own metadata.json instead.
"""

from __future__ import annotations

from typing import NamedTuple

from ebm_zoo.utils.checks import EbmZooError


class PresetInfo(NamedTuple):
    name: str
    description: str
    family: str
    config: str
    dataset: str
    image_size: int
    weights: str | None = None
    sha256: str | None = None


def collect_presets() -> dict[str, PresetInfo]:
    """{name: PresetInfo} of every registered family's presets, sorted by name (read from the
    family folders without importing TensorFlow: ebm_zoo.models.registry.manifests)."""
    from ebm_zoo.models.registry import manifests

    out: dict[str, PresetInfo] = {}
    for family, (presets, _) in manifests().items():
        for name, entry in presets.items():
            if name in out:
                raise EbmZooError(
                    f"Preset {name!r} is registered by families {out[name].family!r} and {family!r}; "
                    "preset names must be unique."
                )
            out[name] = PresetInfo(name=name, family=family, **entry)
    return dict(sorted(out.items()))


PRESETS: dict[str, PresetInfo] = collect_presets()
