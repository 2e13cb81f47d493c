"""Energy Matching (Balcerak et al., arXiv:2504.10612): one folder, registered in
ebm_zoo.models.FAMILIES as "energy_matching". See docs/energy_matching.md."""

from ebm_zoo.models.energy_matching.model import EnergyMatching

__all__ = ["EnergyMatching"]
