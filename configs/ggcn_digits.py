"""GGCN on the scikit-learn digits (1,618 training images, 8×8 gray resized to 16×16), CPU-sized.

Same networks and flow as `ggcn_cpu`; more training images than the 90 LFW faces, so sample
quality can be measured against a larger reference set.
"""

from ebm_zoo.configs import ggcn_cpu


def get_config():
    c = ggcn_cpu.get_config()
    c.description = "GGCN on scikit-learn digits (8x8 gray resized to 16x16), CPU-sized"
    c.data.name = "digits"
    c.data.batch_size = 64
    c.train.steps = 2000
    return c
