"""Shared test helpers: tiny configs and model comparisons."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ebm_zoo import config as config_lib


def tiny_descriptor_config(**model_overrides):
    """The descriptor_texture config shrunk to 16×16, a 2-layer net and 3 Langevin steps."""
    cfg = config_lib.get_config("descriptor")
    cfg.model.update(
        dict(
            image_size=16,
            synth_size=16,
            layers=[[8, 3, 2], [8, 3, 1]],
            num_chains=4,
            num_steps=3,
            **model_overrides,
        )
    )
    cfg.data.image_size = 16
    cfg.train.update(dict(steps=4, log_every=2, checkpoint_every=2, num_samples=4))
    return cfg


TINY_VAPO = dict(
    image_size=4,
    channels=1,
    base_channels=8,
    channel_mults=(1,),
    num_res_blocks=1,
    attn_resolutions=(4,),
    dropout=0.0,
    time_embed_dim=16,
    warmup_steps=2,
)


def tiny_vapo(**overrides):
    """A VAPO with a 4×4×1 U-Net of 8 channels (seconds to build and trace)."""
    from ebm_zoo.models.vapo import VAPO

    return VAPO(**{**TINY_VAPO, **overrides})


_STRATEGY = []


def two_cpu_strategy():
    """One shared 2-replica MirroredStrategy for the whole test session.

    Separate MirroredStrategy objects in one process restart their collective instance keys and
    collide in TF's collective executor ("Collective instance N expected type ..."), so tests
    share a single instance.
    """
    import pytest

    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs two logical CPU devices (configured in tests/conftest.py before TF starts)")
    if not _STRATEGY:
        _STRATEGY.append(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    return _STRATEGY[0]


def assert_weights_close(a, b, rtol=1e-5, atol=1e-6):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
