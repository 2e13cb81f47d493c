"""GGCN: wGCN energy + generator, amortised symmetrical learning (arXiv:1910.14216).

ggcn_model.py: the model (GGCN); ggcn_presets.py: its presets (data).
"""

from ebm_zoo.models.ggcn.ggcn_model import (
    GGCN,
)
from ebm_zoo.models.ggcn.ggcn_presets import PRESETS
from ebm_zoo.models.registry import register_family

register_family(GGCN, PRESETS, aliases={"ggcn": "ggcn_cpu"})

__all__ = ["GGCN", "PRESETS"]
