"""Samplers shared by every model: Langevin / proximal (JKO) dynamics, persistent chains.

Samplers take callables (an energy function), never models: models import samplers, not the
other way round.
"""

from ebm_zoo.sampling.langevin import LangevinResult, langevin, langevin_step, wgcn_flow
from ebm_zoo.sampling.replay import ReplayBuffer

__all__ = ["LangevinResult", "ReplayBuffer", "langevin", "langevin_step", "wgcn_flow"]
