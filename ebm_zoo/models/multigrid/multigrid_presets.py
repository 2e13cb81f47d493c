"""Presets of the multigrid family: data only, registered in __init__.py (see ebm_zoo.presets.registry)."""

PRESETS = {
    "multigrid_lfw": {
        "description": "Multi-grid generative ConvNets (Gao et al. 2018) on LFW faces (scikit-image), 16x16 gray, grids 1/4/16, per-image norm (servable)",
        "config": "multigrid_layer_cpu",
        "dataset": "lfw_faces",
        "image_size": 16,
        "weights": "package",
        "sha256": "554703fc02b65fc4649e7e78380194911a0b25fdf3644e1e9c5abfe95b0b5d7a",
    },
    "multigrid_celeba": {
        "description": "Multi-grid generative ConvNets (Gao et al. 2018) on CelebA 64x64, grids 1/4/16/64",
        "config": "multigrid_celeba",
        "dataset": "celeb_a",
        "image_size": 64,
    },
}
