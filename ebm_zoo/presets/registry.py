"""The preset registry: data only (name -> what it is, which config trains it, where its weights are).

A preset is a trained (or trainable) model with a name. Each entry says:

  description   one line
  family        model family (ebm_zoo.models.FAMILIES)
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


class PresetInfo(NamedTuple):
    name: str
    description: str
    family: str
    config: str
    dataset: str
    image_size: int
    weights: str | None = None
    sha256: str | None = None


def _p(*args, **kwargs) -> tuple[str, PresetInfo]:
    info = PresetInfo(*args, **kwargs)
    return info.name, info


PRESETS: dict[str, PresetInfo] = dict(
    [
        # ---- Trained here, on data that ships with installed packages; weights inside ebm_zoo.
        _p(
            "descriptor_brick",
            "Generative ConvNet (Xie et al. 2016) learned from the scikit-image brick texture, 64x64 gray",
            "descriptor",
            "descriptor_texture",
            "textures/brick",
            64,
            weights="package",
            sha256="e92ae92139cc0fe00c8d11602810291824ba53a8950885fefea39864f419fff3",
        ),
        _p(
            "multigrid_lfw",
            "Multi-grid generative ConvNets (Gao et al. 2018) on LFW faces (scikit-image), 16x16 gray, "
            "grids 1/4/16, per-image norm (servable)",
            "multigrid",
            "multigrid_layer_cpu",
            "lfw_faces",
            16,
            weights="package",
            sha256="554703fc02b65fc4649e7e78380194911a0b25fdf3644e1e9c5abfe95b0b5d7a",
        ),
        _p(
            "wgcn_lfw",
            "Wasserstein generative ConvNet (wGCN, implicit JKO flow) on LFW faces (scikit-image), 16x16 gray",
            "wgcn",
            "wgcn_cpu",
            "lfw_faces",
            16,
            weights="package",
            sha256="a23c0d13bf9ae8301fad3dc3ef2c0b3896f4d8cbe8c875287a992e6e35e514b5",
        ),
        _p(
            "ggcn_lfw",
            "Generator-guided generative ConvNet (GGCN) on LFW faces (scikit-image), 16x16 gray",
            "ggcn",
            "ggcn_cpu",
            "lfw_faces",
            16,
            weights="package",
            sha256="e533275bf36da9e966ecf6c51a3b6d0ac448219618b6bf0571ae0391784ae170",
        ),
        _p(
            "short_run_digits",
            "Short-run MCMC EBM with replay buffer (Nijkamp et al. 2019) on scikit-learn digits, 16x16 gray",
            "short_run",
            "short_run_digits",
            "digits",
            16,
            weights="package",
            sha256="4bf25a0c0f6ab6d1c82c99ed213189a473d2c379d0b70ada50ff829f3ee7cf4c",
        ),
        _p(
            "vapo_digits",
            "Variational potential flow (VAPO) on scikit-learn digits, 8x8 gray",
            "vapo",
            "vapo_cpu",
            "digits",
            8,
            weights="package",
            sha256="d55c4d81e1a0cb47a011660f6838add484aaeaacaaaef689b801f926ae1ea25e",
        ),
        # ---- Paper-scale: registered with their configs; weights must be trained (GPU-sized).
        _p(
            "multigrid_celeba",
            "Multi-grid generative ConvNets (Gao et al. 2018) on CelebA 64x64, grids 1/4/16/64",
            "multigrid",
            "multigrid_celeba",
            "celeb_a",
            64,
        ),
        _p(
            "ggcn_celeba",
            "Generator-guided generative ConvNet (GGCN, wGCN + generator) on CelebA 64x64",
            "ggcn",
            "ggcn_celeba",
            "celeb_a",
            64,
        ),
        _p(
            "vapo_cifar10",
            "Variational potential flow (VAPO) on CIFAR-10 32x32",
            "vapo",
            "vapo_cifar10",
            "cifar10",
            32,
        ),
        _p(
            "vapo_celeba",
            "Variational potential flow (VAPO) on CelebA 64x64",
            "vapo",
            "vapo_celeba",
            "celeb_a",
            64,
        ),
    ]
)
