"""Samplers shared by every model: Langevin / proximal (JKO) dynamics, MALA, HMC, persistent
chains, chain diagnostics and annealed importance sampling.

Samplers take callables (an energy function), never models: models import samplers, not the
other way round.
"""

from ebm_zoo.sampling.langevin import LangevinResult, langevin, langevin_step, wgcn_flow
from ebm_zoo.sampling.mcmc import (
    FAMILY_SAMPLER_OPTIONS,
    METROPOLIS,
    SAMPLERS,
    FamilyChain,
    HMCSampler,
    LangevinSampler,
    MALASampler,
    Sampler,
    SamplerResult,
    check_family_sampler,
    family_sampler,
    get_sampler,
    make_family_sampler,
    options_for,
    run_family_chain,
    sampler_from_config,
)
from ebm_zoo.sampling.replay import ReplayBuffer
from ebm_zoo.sampling.sde import heun_sde

__all__ = [
    "FAMILY_SAMPLER_OPTIONS",
    "METROPOLIS",
    "SAMPLERS",
    "FamilyChain",
    "HMCSampler",
    "LangevinResult",
    "LangevinSampler",
    "MALASampler",
    "ReplayBuffer",
    "Sampler",
    "SamplerResult",
    "check_family_sampler",
    "family_sampler",
    "get_sampler",
    "heun_sde",
    "langevin",
    "langevin_step",
    "make_family_sampler",
    "options_for",
    "run_family_chain",
    "sampler_from_config",
    "wgcn_flow",
]
