r"""Short-run MCMC EBM (Nijkamp et al. 2019) with an optional replay buffer (Du & Mordatch 2019).

The smallest working EBM and the usual baseline: E(x) = −f(x) with *no* Gaussian reference
term, chains started from uniform noise over the pixel range (or drawn from a replay buffer
whose slots are re-initialised with probability `replay_reinit_prob`), K Langevin steps
x ← x + (δ²/2)·∂f/∂x + s·δ·z, and the maximum-likelihood loss mean f(x̃) − mean f(x_data).

It is the generative ConvNet (ebm_zoo.models.descriptor) with those three changes, so the net,
pixel scale, optimizer and gradient options are the Descriptor's.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models.descriptor.descriptor_model import Descriptor
from ebm_zoo.sampling import ReplayBuffer
from ebm_zoo.utils.checks import EbmZooError


@keras.saving.register_keras_serializable(package="ebm_zoo")
class ShortRun(Descriptor):
    """Short-run MCMC EBM.

    Args (beyond Descriptor's; `chain_init`, `ref_sigma` and `learning` are fixed):
      replay_capacity: slots of the replay buffer (0 = always start from fresh noise).
      replay_reinit_prob: probability that a drawn slot restarts from noise (≈ 0.05).
    """

    family = "short_run"

    def __init__(self, replay_capacity: int = 0, replay_reinit_prob: float = 0.05, **kwargs):
        for fixed in ("chain_init", "learning"):
            if fixed in kwargs and kwargs[fixed] != {"chain_init": "noise", "learning": "ml"}[fixed]:
                raise EbmZooError(
                    f"ShortRun fixes `{fixed}`; remove it from the config (got {kwargs[fixed]!r})."
                )
            kwargs.pop(fixed, None)
        kwargs.setdefault("pixel_scale", 2.0)
        kwargs.setdefault("pixel_offset", 1.0)
        kwargs.setdefault("mode", "object")
        super().__init__(chain_init="noise", learning="ml", **kwargs)
        if replay_capacity < 0:
            raise EbmZooError(f"replay_capacity must be >= 0, got {replay_capacity}.")
        self.replay_capacity = int(replay_capacity)
        self.replay_reinit_prob = float(replay_reinit_prob)
        if self.replay_capacity:
            shape = (self.synth_size, self.synth_size, self.channels)
            self.chains = ReplayBuffer(
                self.replay_capacity, shape, self.replay_reinit_prob, mode="random", name="replay"
            )

    def _energy(self, x):
        return -self.net(x)

    def _reconstruct(self, x):
        raise EbmZooError(
            "ShortRun has no Gaussian reference term, so `reconstruct` (σ²·∂f/∂x) is undefined."
        )

    def chain_start(self, n, seed, size: int | None = None) -> tf.Tensor:
        """Uniform noise over the pixel range, [n, s, s, C] (this replica's rows in training)."""
        size = self.synth_size if size is None else int(size)
        lo, hi = self.internal_range
        return distribute.global_uniform([n, size, size, self.channels], seed, lo, hi)

    def serving_functions(self) -> dict:
        """The common signatures only: no reference term, so no `reconstruct`, and the chain
        starts from uniform noise, so no `sample_from_noise`."""
        out = super().serving_functions()
        del out["reconstruct"], out["sample_from_noise"]
        return out

    def without_training_state(self) -> ShortRun:
        """Without the replay buffer: sampling starts from noise and never reads it, and it
        would make up nearly all of a preset's weights (10,000 MNIST images = 31 MB)."""
        if not self.replay_capacity:
            return self
        from ebm_zoo.presets import files

        cfg = keras.saving.serialize_keras_object(self)
        cfg["config"] = {**cfg["config"], "replay_capacity": 0}
        return self._copy_variables_into(files.model_from_config(cfg, "ShortRun without its replay buffer"))

    def get_config(self):
        cfg = super().get_config()
        for fixed in ("chain_init", "learning"):
            cfg.pop(fixed)
        cfg.update(replay_capacity=self.replay_capacity, replay_reinit_prob=self.replay_reinit_prob)
        return cfg
