"""Replica-aware helpers for custom `train_step`s under `tf.distribute`.

The rule used across ebm_zoo: every random draw and every piece of persistent state is
defined for the *global* batch, and each replica takes its own rows of it. Replicas therefore
never share noise, and a step on R replicas equals the same step on one replica with the same
global batch (tested in tests/test_distribute.py). The price is that each replica draws the
global noise tensor and slices it, which costs R x the RNG work of its own rows — small next to
the ConvNet's forward and backward passes.
"""

from __future__ import annotations

import tensorflow as tf


def replica_context_info() -> tuple[tf.Tensor, int]:
    """Returns (replica_id as int32 tensor, number of replicas in sync as a Python int)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context: behave as a single replica
        return tf.constant(0, tf.int32), 1
    rid = ctx.replica_id_in_sync_group
    if not isinstance(rid, tf.Tensor):
        rid = tf.constant(rid, tf.int32)
    return tf.cast(rid, tf.int32), int(ctx.num_replicas_in_sync)


def num_replicas() -> int:
    return replica_context_info()[1]


def local_rows(global_tensor: tf.Tensor, local_batch) -> tf.Tensor:
    """Rows [rid * local_batch, (rid + 1) * local_batch) of a global-batch tensor."""
    rid, n = replica_context_info()
    if n == 1:
        return global_tensor
    start = rid * tf.cast(local_batch, tf.int32)
    return global_tensor[start : start + local_batch]


def global_normal(local_shape, seed: tf.Tensor, dtype=tf.float32) -> tf.Tensor:
    """Standard normal noise for this replica's rows of the global batch.

    Args:
      local_shape: shape of this replica's tensor; its first axis is the local batch.
      seed: int32/int64 tensor of shape [2] for stateless RNG (same on every replica).
    """
    local_shape = tf.convert_to_tensor(local_shape, tf.int32)
    _, n = replica_context_info()
    if n == 1:
        return tf.random.stateless_normal(local_shape, seed, dtype=dtype)
    global_shape = tf.concat([[local_shape[0] * n], local_shape[1:]], axis=0)
    return local_rows(tf.random.stateless_normal(global_shape, seed, dtype=dtype), local_shape[0])


def global_uniform(local_shape, seed: tf.Tensor, minval=0.0, maxval=1.0, dtype=tf.float32):
    """Uniform noise for this replica's rows of the global batch (see `global_normal`)."""
    local_shape = tf.convert_to_tensor(local_shape, tf.int32)
    _, n = replica_context_info()
    if n == 1:
        return tf.random.stateless_uniform(local_shape, seed, minval, maxval, dtype=dtype)
    global_shape = tf.concat([[local_shape[0] * n], local_shape[1:]], axis=0)
    g = tf.random.stateless_uniform(global_shape, seed, minval, maxval, dtype=dtype)
    return local_rows(g, local_shape[0])


def all_gather(x: tf.Tensor) -> tf.Tensor:
    """Concatenates every replica's `x` along axis 0 (identity on one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_gather(x, axis=0)


def step_seed(base_seed: int, step: tf.Tensor, stream: int = 0) -> tf.Tensor:
    """A [2] int32 stateless seed derived from (base_seed, step, stream); same on all replicas.

    `step` is normally the optimizer's iteration counter, which is checkpointed, so a resumed
    run draws exactly the noise the uninterrupted run would have drawn.
    """
    seed = tf.stack([tf.constant(base_seed, tf.int32), tf.constant(stream, tf.int32)])
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(step, tf.int32))


def split_seed(seed: tf.Tensor, index) -> tf.Tensor:
    """A new stateless seed for sub-stream `index` (e.g. the Langevin step number)."""
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(index, tf.int32))


def all_reduce_sum(tensors: list[tf.Tensor]) -> list[tf.Tensor]:
    """Sums each tensor across replicas (identity on one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return list(tensors)
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, list(tensors))
