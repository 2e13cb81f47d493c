"""Presets of the energy_matching family: data only, registered in __init__.py (see ebm_zoo.presets.registry).

`energy_matching_mnist` names the CPU recipe (configs/energy_matching_mnist.py: ≈ 1 h on 2 cores) on
the local MNIST copy; no weights are shipped yet (not trained here; docs/energy_matching.md "Not done
yet" gives the commands), so `ebm_zoo.load("energy_matching_mnist")` says so and how to train it.
"""

PRESETS = {
    "energy_matching_mnist": {
        "description": "Energy Matching (Balcerak et al. 2025) on MNIST 28x28 gray, CPU recipe (no weights yet)",
        "config": "energy_matching_mnist",
        "dataset": "mnist_local",
        "image_size": 28,
    },
}
