r"""Energy Matching's potential networks V(x): [N, H, W, C] in [−1, 1] -> [N].

`UNetViTPotential` — the official CIFAR-10 / ImageNet-32 potential (`EBViTModelWrapper` in
experiments/cifar10/network_transformer_vit.py): torchcfm's U-Net (guided-diffusion layout) run
at a *fixed* time t = 0.5, whose image-shaped output is cut into 4×4 patches, embedded
(Conv 4×4 / 4, learned position embedding), passed through a post-norm Transformer encoder,
mean-pooled over tokens and mapped by a Linear to one number, times `output_scale` (1000), with
an optional tanh soft clamp. The U-Net here follows torchcfm's `UNetModel` with the official
flags (`use_scale_shift_norm=False`: the time embedding is *added* after the first conv of each
residual block; `conv_resample=True`: strided 3×3 conv down, nearest ×2 + 3×3 conv up;
attention with `channels // num_head_channels` heads, legacy q/k/v channel order), so its
weights map one-to-one to the official state dict. Parameter count at the official flags:
49,985,796 (the official README: "50M parameters"; tested).

`ConvMLPPotential` — the official MNIST potential (`Network_2M_MNIST28x28` in
experiments/mnist/model.py, commit 6cfc21d): two stages of [conv3×3 + GELU]×2 with a
4×4 / 2 conv down-sampling between them, global average pools of both stages concatenated,
then Linear-GELU-Linear-GELU-Linear to a scalar. The official net also builds a second
down-sampling conv whose output is never used; it is left out here (V is unchanged).

Dropout is stateless (a [2] seed per call, global-batch masks sliced per replica; None = off),
so training on 2 replicas equals 1 replica. Shared pieces come from ebm_zoo.nets.unet
(`timestep_embedding`, `norm_groups`).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.nets.fused import silu
from ebm_zoo.nets.unet import timestep_embedding
from ebm_zoo.utils.checks import EbmZooError


def _dropout(h, rate: float, seed):
    if seed is None or rate <= 0.0:
        return h
    u = distribute.global_uniform(tf.shape(h), seed, dtype=h.dtype)
    return tf.where(u >= rate, h / (1.0 - rate), tf.zeros_like(h))


class _Seeds:
    """Hands out distinct sub-seeds of one dropout seed (None stays None)."""

    def __init__(self, seed):
        self.seed, self.i = seed, 0

    def __call__(self):
        self.i += 1
        return None if self.seed is None else distribute.split_seed(self.seed, self.i)


def _gn(groups: int = 32):
    return keras.layers.GroupNormalization(groups, epsilon=1e-5)


class EMResBlock(keras.layers.Layer):
    """guided-diffusion ResBlock, `use_scale_shift_norm=False`: GN-SiLU-conv, + Dense(SiLU(emb)),
    GN-SiLU-dropout-conv (zero-initialised), 1×1 conv skip when the width changes."""

    def __init__(self, out_ch: int, in_ch: int, dropout: float, groups: int, **kw):
        super().__init__(**kw)
        self.dropout = dropout
        self.norm1, self.norm2 = _gn(groups), _gn(groups)
        self.conv1 = keras.layers.Conv2D(out_ch, 3, padding="same")
        self.emb = keras.layers.Dense(out_ch)
        self.conv2 = keras.layers.Conv2D(out_ch, 3, padding="same", kernel_initializer="zeros")
        self.skip = keras.layers.Conv2D(out_ch, 1) if in_ch != out_ch else None

    def call(self, x, emb, seed=None):
        h = self.conv1(silu(self.norm1(x)))
        h = h + self.emb(silu(emb))[:, None, None, :]
        h = self.conv2(_dropout(silu(self.norm2(h)), self.dropout, seed))
        return (x if self.skip is None else self.skip(x)) + h


class EMAttention(keras.layers.Layer):
    """guided-diffusion AttentionBlock: GN, 1×1 qkv, `heads` heads in the legacy channel order
    ([head][q, k, v][ch]), softmax(q·kᵀ/√ch)·v, zero-initialised 1×1 projection, residual."""

    def __init__(self, channels: int, heads: int, groups: int, **kw):
        super().__init__(**kw)
        if channels % heads:
            raise EbmZooError(f"Attention width {channels} is not divisible by {heads} heads.")
        self.heads = heads
        self.norm = _gn(groups)
        self.qkv = keras.layers.Dense(3 * channels)
        self.proj = keras.layers.Dense(channels, kernel_initializer="zeros")

    def call(self, x):
        shape = tf.shape(x)
        n, c = shape[0], x.shape[-1]
        ch = c // self.heads
        qkv = tf.reshape(self.qkv(tf.reshape(self.norm(x), [n, -1, c])), [n, -1, self.heads, 3, ch])
        q, k, v = (tf.transpose(qkv[:, :, :, i], [0, 2, 1, 3]) for i in range(3))  # [N, h, T, ch]
        w = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * (float(ch) ** -0.5), axis=-1)
        a = tf.reshape(tf.transpose(tf.matmul(w, v), [0, 2, 1, 3]), [n, -1, c])
        return x + tf.reshape(self.proj(a), shape)


class EMUNet(keras.layers.Layer):
    """torchcfm `UNetModel` (guided-diffusion) with `use_scale_shift_norm=False`,
    `conv_resample=True`, `resblock_updown=False`: x [N, H, W, c], t [N] -> [N, H, W, c]."""

    def __init__(
        self,
        out_channels: int,
        image_size: int,
        num_channels: int = 128,
        num_res_blocks: int = 2,
        channel_mult=(1, 2, 2, 2),
        attention_resolutions=(16,),
        num_heads: int = 4,
        num_head_channels: int = 64,
        dropout: float = 0.1,
        groups: int = 32,
        **kw,
    ):
        super().__init__(**kw)
        levels = len(channel_mult)
        if image_size % (2 ** (levels - 1)):
            raise EbmZooError(
                f"image_size={image_size} is not divisible by 2^(levels-1) = {2 ** (levels - 1)} for "
                f"channel_mult={tuple(channel_mult)}; use fewer levels."
            )
        C = int(num_channels)
        self.C, self.dropout = C, float(dropout)

        def heads(ch):
            return num_heads if num_head_channels == -1 else max(1, ch // num_head_channels)

        self.t_dense0, self.t_dense1 = keras.layers.Dense(4 * C), keras.layers.Dense(4 * C)
        ch = int(channel_mult[0] * C)
        self.conv_in = keras.layers.Conv2D(ch, 3, padding="same")
        self.down, chans, res = [], [ch], image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(EMResBlock(int(mult * C), ch, self.dropout, groups))
                ch = int(mult * C)
                if res in attention_resolutions:
                    self.down.append(EMAttention(ch, heads(ch), groups))
                chans.append(ch)
            if level != levels - 1:
                self.down.append(
                    keras.Sequential(
                        [keras.layers.ZeroPadding2D(1), keras.layers.Conv2D(ch, 3, strides=2)], name=None
                    )
                )
                chans.append(ch)
                res //= 2
        self.mid = [
            EMResBlock(ch, ch, self.dropout, groups),
            EMAttention(ch, heads(ch), groups),
            EMResBlock(ch, ch, self.dropout, groups),
        ]
        self.up = []
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                self.up.append(EMResBlock(int(mult * C), ch + chans.pop(), self.dropout, groups))
                ch = int(mult * C)
                if res in attention_resolutions:
                    self.up.append(EMAttention(ch, heads(ch), groups))
                if level and i == num_res_blocks:
                    self.up.append(
                        keras.Sequential(
                            [keras.layers.UpSampling2D(2), keras.layers.Conv2D(ch, 3, padding="same")]
                        )
                    )
                    res *= 2
        self.norm_out = _gn(groups)
        self.conv_out = keras.layers.Conv2D(out_channels, 3, padding="same", kernel_initializer="zeros")

    def call(self, x, t, seed=None):
        seeds = _Seeds(seed)
        emb = timestep_embedding(tf.broadcast_to(tf.cast(t, x.dtype), tf.shape(x)[:1]), self.C)
        emb = self.t_dense1(silu(self.t_dense0(emb)))
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            if isinstance(layer, EMResBlock):
                h = layer(h, emb, seeds())
                hs.append(h)
            elif isinstance(layer, EMAttention):
                h = layer(h)
                hs[-1] = h
            else:
                h = layer(h)
                hs.append(h)
        h = self.mid[0](h, emb, seeds())
        h = self.mid[2](self.mid[1](h), emb, seeds())
        for layer in self.up:
            if isinstance(layer, EMResBlock):
                h = layer(tf.concat([h, hs.pop()], axis=-1), emb, seeds())
            else:
                h = layer(h)
        return self.conv_out(silu(self.norm_out(h)))


class EncoderLayer(keras.layers.Layer):
    """PyTorch `nn.TransformerEncoderLayer` (post-norm, GELU, FF = 4·d, dropout p everywhere):
    x = LN(x + drop(MHA(x))); x = LN(x + drop(W2·drop(GELU(W1·x))))."""

    def __init__(self, dim: int, heads: int, dropout: float, **kw):
        super().__init__(**kw)
        if dim % heads:
            raise EbmZooError(f"embed_dim={dim} is not divisible by transformer_nheads={heads}.")
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.in_proj = keras.layers.Dense(3 * dim)
        self.out_proj = keras.layers.Dense(dim)
        self.ff1, self.ff2 = keras.layers.Dense(4 * dim), keras.layers.Dense(dim)
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)

    def call(self, x, seeds):
        n, d, h = tf.shape(x)[0], self.dim, self.heads
        qkv = tf.reshape(self.in_proj(x), [n, -1, 3, h, d // h])
        q, k, v = (tf.transpose(qkv[:, :, i], [0, 2, 1, 3]) for i in range(3))  # [N, h, T, d/h]
        w = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * float(d // h) ** -0.5, axis=-1)
        w = _dropout(w, self.dropout, seeds())
        a = tf.reshape(tf.transpose(tf.matmul(w, v), [0, 2, 1, 3]), [n, -1, d])
        x = self.norm1(x + _dropout(self.out_proj(a), self.dropout, seeds()))
        f = self.ff2(_dropout(tf.nn.gelu(self.ff1(x), approximate=False), self.dropout, seeds()))
        return self.norm2(x + _dropout(f, self.dropout, seeds()))


@keras.saving.register_keras_serializable(package="ebm_zoo")
class UNetViTPotential(keras.layers.Layer):
    """The official CIFAR-10 potential (see the module docstring). V: [N, H, W, c] -> [N]."""

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        num_channels: int = 128,
        num_res_blocks: int = 2,
        channel_mult=(1, 2, 2, 2),
        attention_resolutions=(16,),
        num_heads: int = 4,
        num_head_channels: int = 64,
        dropout: float = 0.1,
        patch_size: int = 4,
        embed_dim: int = 384,
        transformer_nheads: int = 4,
        transformer_nlayers: int = 8,
        output_scale: float = 1000.0,
        energy_clamp: float | None = None,
        groups: int = 32,
        unet_time: float = 0.5,
        **kw,
    ):
        super().__init__(**kw)
        if image_size % patch_size:
            raise EbmZooError(f"image_size={image_size} is not divisible by patch_size={patch_size}.")
        self.cfg = dict(
            image_size=int(image_size),
            channels=int(channels),
            num_channels=int(num_channels),
            num_res_blocks=int(num_res_blocks),
            channel_mult=[int(m) for m in channel_mult],
            attention_resolutions=[int(r) for r in attention_resolutions],
            num_heads=int(num_heads),
            num_head_channels=int(num_head_channels),
            dropout=float(dropout),
            patch_size=int(patch_size),
            embed_dim=int(embed_dim),
            transformer_nheads=int(transformer_nheads),
            transformer_nlayers=int(transformer_nlayers),
            output_scale=float(output_scale),
            energy_clamp=None if energy_clamp is None else float(energy_clamp),
            groups=int(groups),
            unet_time=float(unet_time),
        )
        c = self.cfg
        self.unet = EMUNet(
            c["channels"],
            c["image_size"],
            c["num_channels"],
            c["num_res_blocks"],
            c["channel_mult"],
            c["attention_resolutions"],
            c["num_heads"],
            c["num_head_channels"],
            c["dropout"],
            c["groups"],
        )
        self.patch = keras.layers.Conv2D(
            c["embed_dim"], c["patch_size"], strides=c["patch_size"], kernel_initializer="glorot_uniform"
        )
        num_patches = (c["image_size"] // c["patch_size"]) ** 2
        self.pos_embed = self.add_weight(
            shape=(1, num_patches, c["embed_dim"]), initializer="zeros", name="pos_embed"
        )
        self.layers_ = [
            EncoderLayer(c["embed_dim"], c["transformer_nheads"], c["dropout"])
            for _ in range(c["transformer_nlayers"])
        ]
        self.final = keras.layers.Dense(1)

    def call(self, x, seed=None):
        c = self.cfg
        seeds = _Seeds(seed)
        u = self.unet(x, tf.fill(tf.shape(x)[:1], c["unet_time"]), seeds())
        tokens = self.patch(u)
        tokens = tf.reshape(tokens, [tf.shape(x)[0], -1, c["embed_dim"]]) + self.pos_embed
        for layer in self.layers_:
            tokens = layer(tokens, seeds=seeds)
        v = tf.squeeze(self.final(tf.reduce_mean(tokens, axis=1)), -1) * c["output_scale"]
        if c["energy_clamp"] is not None:
            v = c["energy_clamp"] * tf.tanh(v / c["energy_clamp"])
        return v

    def get_config(self):
        return {**super().get_config(), **self.cfg}


@keras.saving.register_keras_serializable(package="ebm_zoo")
class ConvMLPPotential(keras.layers.Layer):
    """The official MNIST potential (see the module docstring). V: [N, H, W, c] -> [N].

    widths: channels of the conv stages ((64, 128) official); mlp_width: hidden Linear size
    (1024 official). Dropout is not used by the official MNIST net (kept at 0).
    """

    def __init__(self, widths=(64, 128), mlp_width: int = 1024, dropout: float = 0.0, **kw):
        super().__init__(**kw)
        self.cfg = dict(widths=[int(w) for w in widths], mlp_width=int(mlp_width), dropout=float(dropout))
        if not self.cfg["widths"]:
            raise EbmZooError("ConvMLPPotential needs at least one conv stage in `widths`.")
        self.stages, self.downs = [], []
        for i, w in enumerate(self.cfg["widths"]):
            self.stages.append(
                [keras.layers.Conv2D(w, 3, padding="same"), keras.layers.Conv2D(w, 3, padding="same")]
            )
            if i < len(self.cfg["widths"]) - 1:  # the official last down-sampling is unused
                self.downs.append(
                    keras.Sequential([keras.layers.ZeroPadding2D(1), keras.layers.Conv2D(w, 4, strides=2)])
                )
        self.fc0 = keras.layers.Dense(self.cfg["mlp_width"])
        self.fc1 = keras.layers.Dense(self.cfg["mlp_width"])
        self.out = keras.layers.Dense(1)

    def call(self, x, seed=None):
        seeds = _Seeds(seed)
        pooled, h = [], x
        for i, (c1, c2) in enumerate(self.stages):
            h = tf.nn.gelu(c2(tf.nn.gelu(c1(h), approximate=False)), approximate=False)
            pooled.append(tf.reduce_mean(h, axis=[1, 2]))
            if i < len(self.downs):
                h = self.downs[i](h)
        h = tf.nn.gelu(self.fc0(tf.concat(pooled, axis=-1)), approximate=False)
        h = _dropout(h, self.cfg["dropout"], seeds())
        h = tf.nn.gelu(self.fc1(h), approximate=False)
        return tf.squeeze(self.out(h), -1)

    def get_config(self):
        return {**super().get_config(), **self.cfg}


NETS = {"unet_vit": UNetViTPotential, "conv_mlp": ConvMLPPotential}


def build_potential(net: str, image_size: int, channels: int, net_config: dict, name: str):
    """A potential network by name ("unet_vit" official CIFAR-10, "conv_mlp" official MNIST)."""
    if net not in NETS:
        raise EbmZooError(f"Unknown potential net {net!r}; valid: {', '.join(sorted(NETS))}.")
    kw = dict(net_config)
    if net == "unet_vit":
        kw.update(image_size=image_size, channels=channels)
    try:
        return NETS[net](name=name, **kw)
    except (TypeError, ValueError) as e:  # Keras raises ValueError for unknown keywords
        raise EbmZooError(f"Bad `net_config` for net {net!r}: {e}") from e
