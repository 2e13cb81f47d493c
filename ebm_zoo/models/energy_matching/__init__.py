"""Energy Matching (Balcerak et al., arXiv:2504.10612, NeurIPS 2025). See docs/energy_matching.md.

energy_matching_model.py: the model (EnergyMatching); energy_matching_presets.py: its presets
(data); dynamics.py (OT coupling, flow and CD losses, temperature schedule, Heun sampler) and
nets.py (the official potentials) are used by this family only.
"""

from ebm_zoo.models.energy_matching.energy_matching_model import EnergyMatching
from ebm_zoo.models.energy_matching.energy_matching_presets import PRESETS
from ebm_zoo.models.registry import register_family

register_family(EnergyMatching, PRESETS, aliases={"energy_matching": "energy_matching_mnist"})

__all__ = ["EnergyMatching", "PRESETS"]
