"""The generative ConvNet ("descriptor", Xie et al. 2016).

descriptor_model.py: the model (Descriptor); descriptor_presets.py: its presets (data).
"""

from ebm_zoo.models.descriptor.descriptor_model import (
    CHAIN_INITS,
    Descriptor,
)
from ebm_zoo.models.descriptor.descriptor_presets import PRESETS
from ebm_zoo.models.registry import register_family

register_family(Descriptor, PRESETS, aliases={"descriptor": "descriptor_texture"})

__all__ = ["CHAIN_INITS", "Descriptor", "PRESETS"]
