"""VAPO: variational potential flow (Loo et al. 2024).

vapo_model.py: the model (VAPO); vapo_presets.py: its presets (data).
"""

from ebm_zoo.models.registry import register_family
from ebm_zoo.models.vapo.vapo_model import (
    VAPO,
    LinearWarmup,
    correlation,
    covariance,
    global_batch_statistic,
    official_terms,
    v1_terms,
)
from ebm_zoo.models.vapo.vapo_presets import PRESETS

register_family(VAPO, PRESETS, aliases={"vapo": "vapo_cpu"})

__all__ = [
    "LinearWarmup",
    "VAPO",
    "correlation",
    "covariance",
    "global_batch_statistic",
    "official_terms",
    "v1_terms",
    "PRESETS",
]
