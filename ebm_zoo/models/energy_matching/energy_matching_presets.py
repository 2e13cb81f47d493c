"""Presets of the energy_matching family: data only, registered in __init__.py (see ebm_zoo.presets.registry).

`energy_matching_mnist`: the CPU recipe (configs/energy_matching_mnist.py: 9,500 flow-matching
warm-up steps + 300 contrastive-divergence steps, 41 min on 2 cores) on the local MNIST copy;
weights shipped. Figures and how T changes them: docs/energy_matching.md.
"""

PRESETS = {
    "energy_matching_mnist": {
        "description": "Energy Matching (Balcerak et al. 2025) on full MNIST 28x28 gray, CPU recipe: 9,500 warm-up + 300 CD steps",
        "config": "energy_matching_mnist",
        "dataset": "mnist_local",
        "image_size": 28,
        "weights": "package",
        "sha256": "1e885079298f3956ba2883a8478bdcf9a88889157d9320de8f026e0d7b7480bb",
    },
}
