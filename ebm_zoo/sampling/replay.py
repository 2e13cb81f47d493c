"""Persistent chains and replay buffers (Du & Mordatch 2019; persistent CD).

The buffer is one non-trainable variable of shape [capacity, H, W, C] that holds the global
state. Under a `tf.distribute` strategy every replica reads its own rows of a *global* draw of
slot indices, and writes back through an all-gather, so all replicas keep identical copies and a
step on R replicas equals the step on one replica with the global batch (see ebm_zoo.distribute).

Two modes:
- `sequential`: capacity == global batch; replica r always owns rows r·b … (r+1)·b − 1 —
  persistent chains, one per synthesised image (the descriptor's ML mode, persistent CD).
- `random`: slots drawn uniformly each step, each re-initialised with probability
  `reinit_prob` (≈ 5 % in Du & Mordatch) — the replay buffer of short-run samplers.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from ebm_zoo import distribute


@keras.saving.register_keras_serializable(package="ebm_zoo")
class ReplayBuffer(keras.layers.Layer):
    """Holds persistent MCMC states.

    Args:
      capacity: number of slots (global).
      shape: per-example shape (H, W, C).
      reinit_prob: probability that a drawn slot is replaced by a fresh initial state.
      mode: "random" or "sequential" (see module docstring).
    """

    def __init__(self, capacity: int, shape, reinit_prob: float = 0.05, mode: str = "random", **kw):
        super().__init__(**kw)
        if mode not in ("random", "sequential"):
            raise ValueError(f"ReplayBuffer mode must be 'random' or 'sequential', got {mode!r}.")
        if not 0.0 <= reinit_prob <= 1.0:
            raise ValueError(f"reinit_prob must lie in [0, 1], got {reinit_prob}.")
        self.capacity = int(capacity)
        self.shape_ = tuple(int(s) for s in shape)
        self.reinit_prob = float(reinit_prob)
        self.mode = mode
        self.states = self.add_weight(
            shape=(self.capacity, *self.shape_),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="states",
        )
        # 0 until the slot has been written once; unfilled slots are always re-initialised.
        self.filled = self.add_weight(
            shape=(self.capacity,),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="filled",
        )

    def draw(self, local_batch: int, seed: tf.Tensor, init_fn: Callable[[int, tf.Tensor], tf.Tensor]):
        """Draws this replica's starting states.

        Args:
          local_batch: rows per replica (static int).
          seed: [2] stateless seed, identical on all replicas.
          init_fn: (n, seed) -> fresh states [n, H, W, C], e.g. noise or data.

        Returns:
          (x0 [local_batch, H, W, C], global_indices [local_batch] int32).
        """
        _, n_rep = distribute.replica_context_info()
        global_batch = local_batch * n_rep
        if self.mode == "sequential":
            if global_batch != self.capacity:
                raise ValueError(
                    f"Sequential persistent chains need capacity == global batch; got capacity "
                    f"{self.capacity} and global batch {global_batch}. Set the chain count to the "
                    f"global batch size."
                )
            idx_global = tf.range(global_batch, dtype=tf.int32)
            reinit_global = tf.zeros([global_batch], tf.bool)
        else:
            s_idx, s_re = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
            idx_global = tf.random.stateless_uniform([global_batch], s_idx, 0, self.capacity, dtype=tf.int32)
            reinit_global = tf.random.stateless_uniform([global_batch], s_re) < self.reinit_prob
        idx = distribute.local_rows(idx_global, local_batch)
        reinit = distribute.local_rows(reinit_global, local_batch)
        stored = tf.gather(self.states, idx)
        fresh = tf.cast(init_fn(local_batch, distribute.split_seed(seed, 7)), stored.dtype)
        use_fresh = tf.logical_or(reinit, tf.gather(self.filled, idx) < 0.5)
        sel = tf.reshape(use_fresh, [-1] + [1] * len(self.shape_))
        return tf.where(sel, fresh, stored), idx

    def update(self, indices: tf.Tensor, states: tf.Tensor) -> None:
        """Writes this replica's states back (all replicas end with the same buffer)."""
        all_idx = distribute.all_gather(indices)
        all_states = distribute.all_gather(tf.cast(states, self.states.dtype))
        self.states.assign(tf.tensor_scatter_nd_update(self.states, all_idx[:, None], all_states))
        self.filled.assign(
            tf.tensor_scatter_nd_update(
                self.filled, all_idx[:, None], tf.ones_like(all_idx, self.filled.dtype)
            )
        )

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            capacity=self.capacity, shape=list(self.shape_), reinit_prob=self.reinit_prob, mode=self.mode
        )
        return cfg
