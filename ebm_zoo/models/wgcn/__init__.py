"""wGCN: the generative ConvNet with the implicit JKO particle flow (arXiv:1910.14216).

wgcn_model.py: the model (WGCN); wgcn_presets.py: its presets (data).
"""

from ebm_zoo.models.registry import register_family
from ebm_zoo.models.wgcn.wgcn_model import (
    WGCN,
    FlowTraceMetrics,
    check_flow_args,
)
from ebm_zoo.models.wgcn.wgcn_presets import PRESETS

register_family(WGCN, PRESETS, aliases={"wgcn": "wgcn_cpu"})

__all__ = ["FlowTraceMetrics", "WGCN", "check_flow_args", "PRESETS"]
