r"""The time-conditioned U-Net U_θ(x, t) of VAPO (MODELS.md §4), as in its official code.

The potential is Φ(x, t) = ½‖x − U_θ(x, t)‖² (ebm_zoo.models.vapo); this module only builds U.

Layout (the official code's guided-diffusion-style U-Net with `use_scale_shift_norm=True`,
`conv_resample=False`, one attention head; all convolutions 'same'):

    t [N] --sinusoidal(d = time_embed_dim, [cos | sin])--> Dense(4C) -> SiLU -> Dense(4C) = temb
    x [N, H, W, c] -> conv3x3(C·mult[0])
      down, level i = 0..L-1:  num_res_blocks × ResBlock(C·mult[i]) (+ self-attention where the
                               resolution is in attn_resolutions), then a 2×2 average pool except
                               at the last level
      middle:                  ResBlock, self-attention, ResBlock
      up, level i = L-1..0:    (num_res_blocks + 1) × ResBlock on [h, skip] (+ attention),
                               then nearest ×2 up-sampling except at level 0
    -> GroupNorm -> SiLU -> conv3x3(c), **zero-initialised**, so U ≡ 0 and Φ = ½‖x‖² at init.

ResBlock: GroupNorm → SiLU → conv3x3 → GroupNorm·(1 + scale) + shift with
(scale, shift) = Dense(2·C_out)(SiLU(temb)) → SiLU → dropout → conv3x3 (zero-initialised), plus a
1×1 conv on the shortcut when the channel count changes. Attention: GroupNorm, one 1×1 q/k/v
projection, softmax(q·kᵀ/√C)·v, a zero-initialised output projection, residual.
So every residual branch starts at zero, as in the official code. GroupNorm uses 32 groups on
wide layers (≥ 128 channels) and fewer on the narrow layers of the CPU nets (`norm_groups`).

Dropout is *stateless*: the mask comes from a [2] seed passed to `call` and is drawn for the
global batch then sliced per replica (ebm_zoo.distribute), so training on 2 replicas equals
1 replica. Values: x in the model's internal range ([-1, 1] for VAPO), t in [0, 1].
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.nets.fused import silu
from ebm_zoo.nets.precision import output_dtype
from ebm_zoo.utils.checks import EbmZooError


def norm_groups(channels: int, max_groups: int = 32) -> int:
    """GroupNorm groups: `max_groups` (32) for wide layers, fewer for narrow ones.

    Picks the largest divisor of `channels` that is <= min(max_groups, channels // 4), so that
    every group has at least 4 channels (C = 128 -> 32 groups, C = 32 -> 8, C = 16 -> 4).
    """
    limit = max(1, min(max_groups, channels // 4))
    for g in range(limit, 0, -1):
        if channels % g == 0:
            return g
    return 1


def timestep_embedding(t: tf.Tensor, dim: int, scale: float = 1.0) -> tf.Tensor:
    """Sinusoidal embedding [N, dim] of times t [N] (raw t in [0, 1], times `scale`).

    Frequencies 10000^(-k / (dim/2)), k = 0..dim/2-1; output [cos | sin] (zero-padded when dim
    is odd), the convention of the official code.
    """
    half = dim // 2
    freqs = tf.exp(-math.log(10000.0) * tf.range(half, dtype=tf.float32) / half)
    args = tf.cast(t, tf.float32)[:, None] * scale * freqs[None, :]
    emb = tf.concat([tf.cos(args), tf.sin(args)], axis=1)
    if dim % 2:
        emb = tf.pad(emb, [[0, 0], [0, 1]])
    return emb


def _group_norm(channels: int, max_groups: int) -> keras.layers.GroupNormalization:
    return keras.layers.GroupNormalization(norm_groups(channels, max_groups), epsilon=1e-5)


def _dropout(h: tf.Tensor, rate: float, seed: tf.Tensor | None) -> tf.Tensor:
    """Inverted dropout with a stateless, replica-sliced mask (identity when seed is None)."""
    if seed is None or rate <= 0.0:
        return h
    u = distribute.global_uniform(tf.shape(h), seed, dtype=h.dtype)
    return tf.where(u >= rate, h / (1.0 - rate), tf.zeros_like(h))


class ResBlock(keras.layers.Layer):
    """Residual block with scale-shift (FiLM) time conditioning (see the module docstring)."""

    def __init__(self, out_channels: int, dropout: float, max_groups: int, in_channels: int, **kw):
        super().__init__(**kw)
        self.out_channels = out_channels
        self.dropout = dropout
        self.norm1 = _group_norm(in_channels, max_groups)
        self.conv1 = keras.layers.Conv2D(out_channels, 3, padding="same")
        self.temb_proj = keras.layers.Dense(2 * out_channels)
        self.norm2 = _group_norm(out_channels, max_groups)
        self.conv2 = keras.layers.Conv2D(out_channels, 3, padding="same", kernel_initializer="zeros")
        self.shortcut = keras.layers.Conv2D(out_channels, 1) if in_channels != out_channels else None

    def call(self, h, temb, seed=None):
        x = h
        h = self.conv1(silu(self.norm1(h)))
        scale, shift = tf.split(self.temb_proj(silu(temb))[:, None, None, :], 2, axis=-1)
        h = self.norm2(h) * (1.0 + scale) + shift
        h = self.conv2(_dropout(silu(h), self.dropout, seed))
        if self.shortcut is not None:
            x = self.shortcut(x)
        return x + h


class SelfAttention(keras.layers.Layer):
    """Single-head self-attention over the H·W positions, with a residual connection."""

    def __init__(self, channels: int, max_groups: int, **kw):
        super().__init__(**kw)
        self.norm = _group_norm(channels, max_groups)
        self.qkv = keras.layers.Dense(3 * channels)
        self.proj = keras.layers.Dense(channels, kernel_initializer="zeros")

    def call(self, h):
        shape = tf.shape(h)
        n, c = shape[0], h.shape[-1]
        q, k, v = tf.split(self.qkv(tf.reshape(self.norm(h), [n, -1, c])), 3, axis=-1)  # [N, HW, C]
        w = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * (float(c) ** -0.5), axis=-1)
        return h + tf.reshape(self.proj(tf.matmul(w, v)), shape)


@keras.saving.register_keras_serializable(package="ebm_zoo")
class TimeUNet(keras.layers.Layer):
    """U_θ(x, t): [N, H, W, c] × [N] -> [N, H, W, c] (see the module docstring).

    Args:
      out_channels: c, the image channels.
      base_channels: C (128 in the CIFAR-10 net).
      channel_mults: per-level multipliers of C ((2, 2, 2) for CIFAR-10); the number of levels
        L = len(channel_mults) and H must be divisible by 2^(L-1).
      num_res_blocks: residual blocks per level on the way down (4 for CIFAR-10).
      attn_resolutions: spatial sizes with self-attention ((16,) for CIFAR-10).
      dropout: dropout rate inside residual blocks (0.3 for CIFAR-10 in the official config).
      time_embed_dim: size of the sinusoidal embedding (128).
      max_groups: largest GroupNorm group count (32).
      time_scale: t is multiplied by this before the embedding (1 = the raw t of the official code).
    """

    def __init__(
        self,
        out_channels: int = 3,
        base_channels: int = 128,
        channel_mults=(2, 2, 2),
        num_res_blocks: int = 4,
        attn_resolutions=(16,),
        dropout: float = 0.3,
        time_embed_dim: int = 128,
        max_groups: int = 32,
        time_scale: float = 1.0,
        image_size: int = 32,
        **kw,
    ):
        super().__init__(**kw)
        if len(channel_mults) < 1 or num_res_blocks < 1 or base_channels < 1:
            raise EbmZooError(
                f"TimeUNet needs >= 1 level, res block and channel; got channel_mults={channel_mults!r}, "
                f"num_res_blocks={num_res_blocks!r}, base_channels={base_channels!r}."
            )
        if image_size % (2 ** (len(channel_mults) - 1)):
            raise EbmZooError(
                f"image_size={image_size} is not divisible by 2^(levels-1) = {2 ** (len(channel_mults) - 1)} "
                f"for channel_mults={tuple(channel_mults)}; use fewer levels or resize the images."
            )
        self.out_channels = int(out_channels)
        self.base_channels = int(base_channels)
        self.channel_mults = tuple(int(m) for m in channel_mults)
        self.num_res_blocks = int(num_res_blocks)
        self.attn_resolutions = tuple(int(r) for r in attn_resolutions)
        self.dropout = float(dropout)
        self.time_embed_dim = int(time_embed_dim)
        self.max_groups = int(max_groups)
        self.time_scale = float(time_scale)
        self.image_size = int(image_size)

        C, G, p = self.base_channels, self.max_groups, self.dropout
        self.temb_dense0 = keras.layers.Dense(4 * C)
        self.temb_dense1 = keras.layers.Dense(4 * C)
        ch = C * self.channel_mults[0]
        self.conv_in = keras.layers.Conv2D(ch, 3, padding="same")

        res, skips = self.image_size, [ch]
        self.down = []  # ResBlock / SelfAttention / AveragePooling2D
        for i, mult in enumerate(self.channel_mults):
            for _ in range(self.num_res_blocks):
                self.down.append(ResBlock(C * mult, p, G, ch))
                ch = C * mult
                if res in self.attn_resolutions:
                    self.down.append(SelfAttention(ch, G))
                skips.append(ch)
            if i != len(self.channel_mults) - 1:
                self.down.append(keras.layers.AveragePooling2D(2))
                res //= 2
                skips.append(ch)
        self.mid = [ResBlock(ch, p, G, ch), SelfAttention(ch, G), ResBlock(ch, p, G, ch)]
        self.up = []
        for i, mult in reversed(list(enumerate(self.channel_mults))):
            for _ in range(self.num_res_blocks + 1):
                self.up.append(ResBlock(C * mult, p, G, ch + skips.pop()))
                ch = C * mult
                if res in self.attn_resolutions:
                    self.up.append(SelfAttention(ch, G))
            if i != 0:
                self.up.append(keras.layers.UpSampling2D(2, interpolation="nearest"))
                res *= 2
        self.norm_out = _group_norm(ch, G)
        # float32 under a mixed policy, so U(x, t) is float32 under "mixed_bfloat16" too.
        self.conv_out = keras.layers.Conv2D(
            self.out_channels, 3, padding="same", kernel_initializer="zeros", dtype=output_dtype()
        )

    def call(self, x, t, dropout_seed=None):
        """U(x, t) [N, H, W, c] for x [N, H, W, c], t [N] (or scalar, broadcast).

        `dropout_seed` ([2] int32) turns dropout on (training); None means inference.
        """
        x = tf.convert_to_tensor(x)
        t = tf.broadcast_to(tf.cast(t, x.dtype), tf.shape(x)[:1])
        temb = timestep_embedding(t, self.time_embed_dim, self.time_scale)
        temb = self.temb_dense1(silu(self.temb_dense0(temb)))
        counter = [0]

        def block_seed():
            counter[0] += 1
            return None if dropout_seed is None else distribute.split_seed(dropout_seed, counter[0])

        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            if isinstance(layer, ResBlock):
                h = layer(h, temb, block_seed())
                hs.append(h)
            elif isinstance(layer, SelfAttention):
                h = layer(h)
                hs[-1] = h
            else:  # 2×2 average pool
                h = layer(h)
                hs.append(h)
        h = self.mid[0](h, temb, block_seed())
        h = self.mid[1](h)
        h = self.mid[2](h, temb, block_seed())
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(tf.concat([h, hs.pop()], axis=-1), temb, block_seed())
            else:
                h = layer(h)
        return self.conv_out(silu(self.norm_out(h)))

    def get_config(self):
        return {
            **super().get_config(),
            "out_channels": self.out_channels,
            "base_channels": self.base_channels,
            "channel_mults": list(self.channel_mults),
            "num_res_blocks": self.num_res_blocks,
            "attn_resolutions": list(self.attn_resolutions),
            "dropout": self.dropout,
            "time_embed_dim": self.time_embed_dim,
            "max_groups": self.max_groups,
            "time_scale": self.time_scale,
            "image_size": self.image_size,
        }


def count_params_analytic(
    out_channels: int = 3,
    base_channels: int = 128,
    channel_mults=(2, 2, 2),
    num_res_blocks: int = 4,
    attn_resolutions=(16,),
    time_embed_dim: int = 128,
    image_size: int = 32,
) -> int:
    """Number of parameters of `TimeUNet` with these settings, counted without building it."""
    C = base_channels

    def conv(cin, cout, k):
        return k * k * cin * cout + cout

    def gn(c):
        return 2 * c

    def resblock(cin, cout):
        n = gn(cin) + conv(cin, cout, 3) + (4 * C * 2 * cout + 2 * cout) + gn(cout) + conv(cout, cout, 3)
        return n + (conv(cin, cout, 1) if cin != cout else 0)

    def attn(c):
        return gn(c) + (c * 3 * c + 3 * c) + (c * c + c)

    ch = C * channel_mults[0]
    total = (time_embed_dim * 4 * C + 4 * C) + (4 * C * 4 * C + 4 * C) + conv(out_channels, ch, 3)
    res, skips = image_size, [ch]
    for i, m in enumerate(channel_mults):
        for _ in range(num_res_blocks):
            total += resblock(ch, C * m)
            ch = C * m
            total += attn(ch) if res in attn_resolutions else 0
            skips.append(ch)
        if i != len(channel_mults) - 1:
            res //= 2
            skips.append(ch)
    total += 2 * resblock(ch, ch) + attn(ch)
    for i, m in reversed(list(enumerate(channel_mults))):
        for _ in range(num_res_blocks + 1):
            total += resblock(ch + skips.pop(), C * m)
            ch = C * m
            total += attn(ch) if res in attn_resolutions else 0
        if i != 0:
            res *= 2
    return total + gn(ch) + conv(ch, out_channels, 3)
