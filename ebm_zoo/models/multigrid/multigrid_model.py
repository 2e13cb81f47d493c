r"""Multi-grid EBM — Gao, Lu, Zhou, Zhu, Wu, "Learning Generative ConvNets via Multi-grid Modeling
and Sampling", CVPR 2018 (arXiv:1709.08868); MODELS.md §2. Also its two baselines, contrastive
divergence (CD) and persistent CD, as `mode="cd"|"pcd"` of the same class.

Model: one generative ConvNet p_s(x) ∝ exp(f_s(x)) per grid s ∈ `grids` (default 1, 4, 16, 64),
each with its own Adam optimizer. Images live in [0, 255] (no centring).

Grids: the observed image at grid s is the block average over k×k blocks, k = S / s
(`down_sample`); a synthesis moves to the next grid by pixel replication (`up_sample`).

One learning iteration (`mode="multigrid"`), a batch of S×S images x:
  1. synth_1 = obs_1 = each image's mean colour (no noise);
  2. for s = grids[1:]: synth_s = T sampler steps under f_s from up_sample(synth_{s-1});
  3. loss_s = mean f_s(synth_s) − mean f_s(obs_s), each minimised by the optimizer of grid s;
  4. diagnostic: abs_err_s = mean |obs_s − synth_s|.

Sampler (`sampler="official"`, the official code): x ← clip(x + (δ²/2)·∂f_s/∂x, 0, 255), i.e.
noise-free gradient descent on E = −f_s. `sampler="langevin"`: full Langevin on
E = −f_s(x) + ‖x‖²/(2σ²) with noise, clipped to [0, 255]. `sampler="mala"|"hmc"`: every grid's
chain is a Metropolis-adjusted chain (per image) on that same E_s restricted to the box
[0, 255]^D (reflecting walls), exact for its step; the coarse-to-fine pyramid only sets where
each grid's chain starts. "official" has no target distribution (no noise), so it has no
adjusted version. MALA/HMC need a per-image energy: with `norm="batch"` E_s(x) depends on the
other images of the batch and a per-chain Metropolis test has no target, so that combination is
refused (use norm="layer" or "none").

Baselines: `mode="cd"`: one net at S×S, chains start at the data batch, T steps.
`mode="pcd"`: one net at S×S, chains persist across iterations in a ReplayBuffer ("sequential":
one chain per batch row, first started at the data; "random": slots drawn at random, a slot is
re-started at the data with probability `pcd_reinit_prob`).

Sampling from scratch (`sample`) starts from 1×1 mean colours drawn from a bank of the mean
colours of recent training images (the paper starts synthesis from the training images' 1×1
versions), then runs the grids coarse to fine (CD/PCD: the single S×S grid from the flat colour).

BatchNorm (`norm="batch"`, default) uses batch statistics in every call as the original does,
so a score depends on the batch it is computed in; `norm="layer"|"none"` are batch-independent
(see docs/multigrid.md).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models.base import EnergyModel, overrides_key, scale_for_replicas
from ebm_zoo.nets.multigrid_nets import NORMS, make_energy_net
from ebm_zoo.sampling import (
    METROPOLIS,
    ReplayBuffer,
    check_family_sampler,
    langevin,
    make_family_sampler,
    options_for,
    run_family_chain,
)
from ebm_zoo.utils.checks import (
    EbmZooError,
    check_choice,
    check_num_steps,
    check_positive,
    check_seed,
    seed_pair,
)

MODES = ("multigrid", "cd", "pcd")
SAMPLERS = ("official", "langevin", *METROPOLIS)
PIXEL_MAX = 255.0
MASK_KINDS = ("center", "random", "left", "right")


# ------------------------------------------------------------------------------------------------
# Grid operators.
def down_sample(x: tf.Tensor, factor: int) -> tf.Tensor:
    """Block average: [N, H, W, C] -> [N, H/factor, W/factor, C] (mean over factor×factor blocks)."""
    if factor == 1:
        return x
    return tf.nn.avg_pool2d(x, ksize=factor, strides=factor, padding="VALID")


def up_sample(x: tf.Tensor, factor: int) -> tf.Tensor:
    """Pixel replication (nearest neighbour): [N, h, w, C] -> [N, h·factor, w·factor, C]."""
    if factor == 1:
        return x
    return tf.repeat(tf.repeat(x, factor, axis=1), factor, axis=2)


def validate_grids(grids, image_size: int) -> list[int]:
    """Checks that grids start at 1, grow by integer factors (>= 2) and end at `image_size`."""
    try:
        g = [int(s) for s in grids]
    except (TypeError, ValueError) as e:
        raise EbmZooError(f"`grids` must be a list of ints such as [1, 4, 16], got {grids!r}.") from e
    example = suggest_grids(image_size)
    if len(g) < 2 or g[0] != 1:
        raise EbmZooError(
            f"`grids` must start at 1 (the 1×1 mean colour) and have at least two grids, got {g}; "
            f"e.g. grids={example} for {image_size}×{image_size} images."
        )
    for a, b in zip(g, g[1:]):
        if b <= a or b % a:
            raise EbmZooError(
                f"`grids` must grow by integer factors >= 2, but {a} -> {b} in {g} does not; "
                f"e.g. grids={example} for {image_size}×{image_size} images."
            )
    if g[-1] != int(image_size):
        raise EbmZooError(
            f"The last grid ({g[-1]}) must equal the image size ({image_size}); got grids={g}. "
            f"Use grids={example}, or resize the images to {g[-1]}×{g[-1]} (data.image_size)."
        )
    return g


def suggest_grids(image_size: int) -> list[int]:
    """A grid list ending at `image_size`, factor 4 where possible (64 -> [1, 4, 16, 64])."""
    g = [int(image_size)]
    while g[0] > 1:
        s = g[0]
        g.insert(0, s // 4 if s % 4 == 0 else s // 2 if s % 2 == 0 else 1)
    return g


# ------------------------------------------------------------------------------------------------
# Masks for inpainting (mask == 1: unknown pixel).
def make_mask(
    kind: str,
    image_size: int,
    n: int = 1,
    *,
    box_fraction: float = 0.5,
    drop_rate: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Binary masks [n, S, S, 1] float32, 1 = unknown pixel.

    Args:
      kind: "center" (centre box of side box_fraction·S), "random" (each pixel unknown with
        probability drop_rate, independently per image), "left" / "right" (that half unknown).
      image_size: S.
      n: number of masks.
    """
    check_choice(kind, "mask kind", MASK_KINDS)
    s = int(image_size)
    m = np.zeros([n, s, s, 1], np.float32)
    if kind == "center":
        if not 0.0 < box_fraction <= 1.0:
            raise EbmZooError(f"`box_fraction` must lie in (0, 1], got {box_fraction!r}.")
        b = max(1, round(s * box_fraction))
        lo = (s - b) // 2
        m[:, lo : lo + b, lo : lo + b] = 1.0
    elif kind == "random":
        if not 0.0 <= drop_rate <= 1.0:
            raise EbmZooError(f"`drop_rate` must lie in [0, 1], got {drop_rate!r}.")
        m[...] = (np.random.default_rng(seed).random(m.shape) < drop_rate).astype(np.float32)
    elif kind == "left":
        m[:, :, : s // 2] = 1.0
    else:
        m[:, :, s // 2 :] = 1.0
    return m


def masked_psnr(pred01, target01, mask) -> float:
    """Mean over images of the PSNR (dB, peak 1) restricted to mask == 1 pixels.

    Args: pred01, target01 [N, H, W, C] in [0, 1]; mask broadcastable to them, 1 = unknown.
    """
    pred, target = np.asarray(pred01, np.float64), np.asarray(target01, np.float64)
    m = np.broadcast_to(np.asarray(mask, np.float64), pred.shape)
    se = ((pred - target) ** 2 * m).reshape(len(pred), -1).sum(1)
    count = m.reshape(len(pred), -1).sum(1)
    mse = se[count > 0] / count[count > 0]
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(mse, 1e-12))))


def mean_colour_fill(images01, mask) -> np.ndarray:
    """Baseline inpainting: every unknown pixel = the mean colour of the image's known pixels.

    Args: images01 [N, H, W, C] in [0, 1]; mask broadcastable to it, 1 = unknown.
    """
    x = np.asarray(images01, np.float32)
    m = np.broadcast_to(np.asarray(mask, np.float32), x.shape)
    known = 1.0 - m
    mean = (x * known).sum(axis=(1, 2), keepdims=True) / np.maximum(
        known.sum(axis=(1, 2), keepdims=True), 1.0
    )
    return np.where(m > 0.5, mean, x)


# ------------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="ebm_zoo")
class MultiGrid(EnergyModel):
    """Multi-grid EBM (and its CD / persistent-CD baselines).

    Args:
      image_size: S, side of the training images; must equal grids[-1].
      channels: C.
      seed: base seed of all stateless randomness in training.
      grids: grid sides, starting at 1 and growing by integer factors, e.g. [1, 4, 16, 64].
      mode: "multigrid" (coarse-to-fine), "cd" or "pcd" (one S×S grid).
      sampler: "official" (noise-free clipped update), "langevin" (noise + reference term), or
        "mala" / "hmc" (Metropolis-adjusted chains on the Langevin energy; norm "layer"/"none").
      sampler_options: settings of "mala"/"hmc" (ebm_zoo.sampling.FAMILY_SAMPLER_OPTIONS).
      num_steps: T sampler steps per grid per iteration.
      step_size: δ.
      ref_sigma: σ of the Gaussian reference (used by sampler="langevin" only), internal scale.
      norm: "batch" (original: batch statistics everywhere), "layer" or "none".
      width: multiplier of the paper's filter counts (1.0 = paper).
      learning_rate, beta_1, beta_2, epsilon: Adam of every grid (paper: 0.3, 0.5, 0.999, 1e-8).
      pcd_chains: PCD buffer size (sequential mode: must equal the global batch size).
      pcd_mode: "sequential" (persistent chain per batch row) or "random" (replay buffer).
      pcd_reinit_prob: probability that a PCD slot restarts at the data (random mode).
      colour_bank_size: number of training-image mean colours kept to start `sample`.
      jit_compile: XLA for the train step (off: not measured faster on CPU, see bench).
    """

    family = "multigrid"
    internal_range = (0.0, PIXEL_MAX)
    sample_overrides = ("step_size", "sampler", "sampler_options")

    def __init__(
        self,
        image_size: int = 16,
        channels: int = 1,
        seed: int = 0,
        grids=(1, 4, 16),
        mode: str = "multigrid",
        sampler: str = "official",
        num_steps: int = 30,
        step_size: float = 0.3,
        ref_sigma: float = 1.0,
        norm: str = "batch",
        width: float = 1.0,
        learning_rate: float = 0.3,
        beta_1: float = 0.5,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        pcd_chains: int | None = None,
        pcd_mode: str = "sequential",
        pcd_reinit_prob: float = 0.0,
        colour_bank_size: int = 1000,
        jit_compile: bool = False,
        sampler_options: dict | None = None,
        **kwargs,
    ):
        super().__init__(image_size=image_size, channels=channels, seed=seed, **kwargs)
        check_choice(mode, "mode", MODES)
        check_choice(norm, "norm", NORMS)
        check_choice(pcd_mode, "pcd_mode", ("sequential", "random"))
        check_positive(step_size, "step_size")
        check_positive(ref_sigma, "ref_sigma")
        check_positive(colour_bank_size, "colour_bank_size")
        if int(num_steps) != num_steps or num_steps < 0:
            raise EbmZooError(f"`num_steps` (T) must be an int >= 0, got {num_steps!r}.")
        self.grids = validate_grids(grids, self.image_size)
        self.mode = mode
        self.sampler = sampler
        self.num_steps = int(num_steps)
        self.step_size = float(step_size)
        self.ref_sigma = float(ref_sigma)
        self.norm = norm
        self.width = float(width)
        self.learning_rate = float(learning_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.pcd_mode = pcd_mode
        self.pcd_reinit_prob = float(pcd_reinit_prob)
        self.pcd_chains = None if pcd_chains is None else int(pcd_chains)
        self.colour_bank_size = int(colour_bank_size)
        self.jit_compile = bool(jit_compile)
        self.sampler_options = self._checked_sampler(sampler, sampler_options, self.step_size, "MultiGrid")

        # Grids that own a network: every grid after 1×1 (multi-grid) or only S×S (CD / PCD).
        self.net_grids = self.grids[1:] if mode == "multigrid" else [self.grids[-1]]
        self.nets = [
            make_energy_net(s, self.channels, norm=norm, width=self.width, name=f"f_{s}")
            for s in self.net_grids
        ]
        self.colour_bank = ReplayBuffer(
            self.colour_bank_size, (1, 1, self.channels), reinit_prob=0.0, mode="random", name="colour_bank"
        )
        self.chains = None
        if mode == "pcd":
            if self.pcd_chains is None or self.pcd_chains <= 0:
                raise EbmZooError(
                    f"mode='pcd' needs `pcd_chains` > 0 (got {pcd_chains!r}); with pcd_mode='sequential' "
                    f"set it to the global batch size (data.batch_size)."
                )
            self.chains = ReplayBuffer(
                self.pcd_chains,
                self.image_shape,
                reinit_prob=self.pcd_reinit_prob,
                mode=pcd_mode,
                name="pcd_chains",
            )
        self.grid_optimizers: list = []

        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.grid_loss_trackers = [keras.metrics.Mean(name=f"loss_{s}") for s in self.net_grids]
        self.abs_err_trackers = [keras.metrics.Mean(name=f"abs_err_{s}") for s in self.net_grids]
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")
        self.sampler_trackers = []
        if sampler in METROPOLIS:
            self.sampler_trackers = [keras.metrics.Mean(name="accept_rate")]
            self.sampler_trackers += [keras.metrics.Mean(name=f"accept_rate_{s}") for s in self.net_grids]
            self.sampler_trackers += [keras.metrics.Mean(name="sampler_energy")]

    # --------------------------------------------------------------------------------------------
    # Optimisers and variables.
    def make_optimizer(self) -> keras.optimizers.Adam:
        """Adam with the paper's settings (Keras' default ε is 1e-7: set explicitly)."""
        return keras.optimizers.Adam(
            learning_rate=self.learning_rate, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon
        )

    def compile(self, optimizer=None, **kwargs):
        """One optimizer per grid; `self.optimizer` is the finest grid's (its `iterations` counts
        training steps and seeds the RNG). A given optimizer is used for the finest grid and
        cloned (same config) for the others."""
        if optimizer is None:
            opts = [self.make_optimizer() for _ in self.nets]
        else:
            if isinstance(optimizer, str):
                optimizer = keras.optimizers.get(optimizer)
            opts = [type(optimizer).from_config(optimizer.get_config()) for _ in self.nets[:-1]] + [optimizer]
        kwargs.setdefault("jit_compile", self.jit_compile)
        super().compile(optimizer=opts[-1], **kwargs)
        self.grid_optimizers = opts

    def build(self, input_shape=None):
        """The nets are built at construction (their input shapes are fixed by the grids)."""
        self.built = True

    def build_all(self) -> None:
        """Creates every net variable and every optimizer slot (restore-before-first-step)."""
        for s, net in zip(self.net_grids, self.nets):
            net(tf.zeros([2, s, s, self.channels]))
        if not self.built:
            self(tf.zeros([2, *self.image_shape]))
        for opt, net in zip(self.grid_optimizers, self.nets):
            if not opt.built:
                opt.build(net.trainable_variables)

    def checkpoint_items(self) -> dict:
        items = super().checkpoint_items()
        for s, opt in zip(self.net_grids, self.grid_optimizers):
            items[f"optimizer_{s}"] = opt
        return items  # super() added "optimizer": the finest grid's, also listed above

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            *self.grid_loss_trackers,
            *self.abs_err_trackers,
            self.grad_norm_tracker,
            *self.sampler_trackers,
        ]

    # --------------------------------------------------------------------------------------------
    # Scores, energies, sampler.
    def grid_score(self, k: int, x: tf.Tensor) -> tf.Tensor:
        """f_s(x) [N] of net k (grid self.net_grids[k]); x [N, s, s, C] in [0, 255]."""
        return tf.reshape(self.nets[k](x, training=True), [-1])

    def grid_energy(self, k: int, x: tf.Tensor, sampler: str | None = None) -> tf.Tensor:
        """E_s(x) [N] = −f_s(x) (+ ‖x‖²/(2σ²) for the langevin, mala and hmc samplers)."""
        e = -self.grid_score(k, x)
        if (sampler or self.sampler) != "official":
            flat = tf.reshape(x, [tf.shape(x)[0], -1])
            e += tf.reduce_sum(tf.square(flat), axis=1) / (2.0 * self.ref_sigma**2)
        return e

    def _energy(self, x: tf.Tensor) -> tf.Tensor:
        return self.grid_energy(len(self.nets) - 1, x)

    def run_sampler(
        self, k: int, x0: tf.Tensor, seed: tf.Tensor, mask=None, num_steps=None, max_steps=None, **overrides
    ):
        """T sampler steps under f of net k from x0 [N, s, s, C] in [0, 255] (T = num_steps: an
        int, default the model's, or an int32 tensor with a static `max_steps`).

        Returns the LangevinResult (samples [N, s, s, C] in [0, 255], grad_norm), or for
        "mala"/"hmc" a FamilyChain (adds accept_rate [N] and energy [N]).
        """
        sampler = overrides.get("sampler") or self.sampler
        steps = self.num_steps if num_steps is None else num_steps
        if sampler in METROPOLIS:
            return run_family_chain(
                sampler,
                options_for(sampler, self.sampler, self.sampler_options, overrides.get("sampler_options")),
                lambda x: self.grid_energy(k, x, sampler),
                x0,
                step_size=float(overrides.get("step_size") or self.step_size),
                noise_scale=1.0,
                clip=(0.0, PIXEL_MAX),
                num_steps=steps,
                max_steps=max_steps if max_steps is not None else max(int(steps), 1),
                seed=seed,
                mask=mask,
            )
        return langevin(
            lambda x: self.grid_energy(k, x, sampler),
            x0,
            num_steps=steps,
            max_steps=max_steps if max_steps is not None else max(int(steps), 1),
            step_size=float(overrides.get("step_size", self.step_size)),
            seed=seed,
            noise_scale=1.0 if sampler == "langevin" else 0.0,
            clip=(0.0, PIXEL_MAX),
            mask=mask,
        )

    def check_overrides(self, overrides: dict, where: str = "sample()") -> None:
        super().check_overrides(overrides, where)
        if "step_size" in overrides:
            check_positive(overrides["step_size"], "step_size")
        if "sampler" in overrides or "sampler_options" in overrides:
            name = overrides.get("sampler") or self.sampler
            opts = options_for(name, self.sampler, self.sampler_options, overrides.get("sampler_options"))
            step = overrides.get("step_size") or self.step_size
            self._checked_sampler(name, opts, step, f"MultiGrid.{where}")

    def _checked_sampler(self, sampler, options, step_size, where: str) -> dict:
        """Validated sampler_options of `sampler` for this model (EbmZooError otherwise)."""
        options = check_family_sampler(sampler, options, choices=SAMPLERS, where=where)
        if sampler in METROPOLIS:
            if self.norm == "batch":
                raise EbmZooError(
                    f"{where}: sampler={sampler!r} needs a per-image energy, but norm='batch' makes "
                    f"E_s(x) depend on the other images of the batch, so a per-chain Metropolis test "
                    f"has no target; use sampler='langevin' (or 'official'), or train with "
                    f"norm='layer' or 'none'."
                )
            make_family_sampler(sampler, options, step_size=step_size, noise_scale=1.0, clip=(0.0, PIXEL_MAX))
        return options

    def _check_train_images(self, x: tf.Tensor) -> None:
        got = tuple(x.shape[1:])
        if None not in got and got != self.image_shape:
            raise EbmZooError(
                f"Training images have shape {got} but this model expects {self.image_shape} "
                f"(grids={self.grids}); set data.image_size={self.image_size} and data.channels="
                f"{self.channels}, or model.image_size/model.grids to fit the images "
                f"(e.g. grids={suggest_grids(x.shape[1]) if x.shape[1] else '[1, 4, 16]'})."
            )

    # --------------------------------------------------------------------------------------------
    def train_step(self, data):
        """One learning iteration on images [N, S, S, C] in [0, 1] (Gao et al. 2018, Algorithm 1):

        1. obs_s = the images block-averaged to every grid s;
        2. synth_s = T sampler steps under f_s from up_sample(synth_{s−1}), synth_1 = obs_1
           (CD: from the data, PCD: from the persistent chains, at S×S only);
        3. per grid, an Adam step on loss_s = mean f_s(synth_s) − mean f_s(obs_s).
        """
        images01 = data[0] if isinstance(data, (tuple, list)) else data
        self._check_train_images(images01)
        x = self.to_internal(images01)
        obs, synth, results = self.synthesise(x, self.step_seed(0))
        self._remember_colours(down_sample(x, self.image_size), tf.shape(x)[0])
        losses = [self.grid_update(k, obs[k], synth[k]) for k in range(len(self.nets))]
        for k, loss in enumerate(losses):
            self.grid_loss_trackers[k].update_state(loss)
            self.abs_err_trackers[k].update_state(tf.reduce_mean(tf.abs(obs[k] - synth[k])))
        self.loss_tracker.update_state(tf.add_n(losses))
        self.grad_norm_tracker.update_state(results[-1].grad_norm)
        if self.sampler in METROPOLIS:
            rates = [tf.reduce_mean(r.accept_rate) for r in results]
            self.sampler_trackers[0].update_state(tf.add_n(rates) / len(rates))
            for tracker, rate in zip(self.sampler_trackers[1:-1], rates):
                tracker.update_state(rate)
            self.sampler_trackers[-1].update_state(tf.reduce_mean(results[-1].energy))
        return {m.name: m.result() for m in self.metrics}

    def synthesise(self, x: tf.Tensor, seed: tf.Tensor):
        """(obs, synth, results) of one iteration: per net grid the observed and the synthesised
        images [N, s, s, C] in [0, 255], and the sampler results (results[-1].grad_norm: the
        last sampler's gradient norm; MALA/HMC results carry accept_rate and energy)."""
        if self.mode == "multigrid":
            obs = [down_sample(x, self.image_size // s) for s in self.net_grids]
            pyramid, results = self._pyramid(down_sample(x, self.image_size), seed)
            return obs, [tf.stop_gradient(p) for p in pyramid[1:]], results
        slots = None
        if self.mode == "cd":
            x0 = x
        else:
            if x.shape[0] is None:
                raise EbmZooError(
                    "mode='pcd' needs a static batch size (persistent chains have fixed slots); "
                    "batch the dataset with drop_remainder=True."
                )
            x0, slots = self.chains.draw(int(x.shape[0]), distribute.split_seed(seed, 1), lambda n, s: x)
        result = self.run_sampler(0, x0, distribute.split_seed(seed, 2))
        synth = tf.stop_gradient(result.samples)
        if slots is not None:
            self.chains.update(slots, synth)
        return [x], [synth], [result]

    def grid_update(self, k: int, obs: tf.Tensor, synth: tf.Tensor) -> tf.Tensor:
        """One step of grid k's optimizer on `grid_loss`; returns the loss."""
        variables = self.nets[k].trainable_variables
        with tf.GradientTape() as tape:
            loss = self.grid_loss(k, obs, synth)
            scaled = scale_for_replicas(loss)
        self.grid_optimizers[k].apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return loss

    def grid_loss(self, k: int, obs: tf.Tensor, synth: tf.Tensor) -> tf.Tensor:
        """loss_s = mean f_s(synth) − mean f_s(obs) for net k (inputs [N, s, s, C], [0, 255])."""
        return tf.reduce_mean(self.grid_score(k, synth)) - tf.reduce_mean(self.grid_score(k, obs))

    def _remember_colours(self, mean_colour: tf.Tensor, local_b) -> None:
        """Writes the batch's 1×1 mean colours into the ring buffer used to start `sample`."""
        _, n_rep = distribute.replica_context_info()
        global_b = local_b * n_rep
        step = tf.cast(self.optimizer.iterations, tf.int32)
        ring = (step * global_b + tf.range(global_b)) % self.colour_bank_size
        self.colour_bank.update(distribute.local_rows(ring, local_b), mean_colour)

    # --------------------------------------------------------------------------------------------
    # Sampling.
    @property
    def default_num_steps(self) -> int:
        return self.num_steps

    def sampler_settings(self) -> dict:
        return {
            **super().sampler_settings(),
            "step_size": self.step_size,
            "sampler": self.sampler,
            "grids": self.grids,
            **({"sampler_options": dict(self.sampler_options)} if self.sampler_options else {}),
        }

    def chain_start(self, n, seed: tf.Tensor) -> tf.Tensor:
        """[n, 1, 1, C] mean colours drawn from the bank (mid-grey if the model is untrained)."""
        count = tf.reduce_sum(tf.cast(self.colour_bank.filled > 0.5, tf.int32))
        u = tf.random.stateless_uniform([n], seed)
        idx = tf.cast(tf.floor(u * tf.cast(tf.maximum(count, 1), tf.float32)), tf.int32)
        colours = tf.gather(tf.convert_to_tensor(self.colour_bank.states), idx)
        return tf.where(count > 0, colours, tf.fill(tf.shape(colours), PIXEL_MAX / 2))

    def _pyramid(self, x1: tf.Tensor, seed: tf.Tensor, num_steps=None, max_steps=None, **overrides):
        """Coarse-to-fine synthesis from 1×1 images x1 [n, 1, 1, C] (grid k's noise: split_seed(seed,
        k)); returns ([x1, one tensor per net grid], [each grid's sampler result]), [0, 255]."""
        x, out, prev_s, results = x1, [x1], 1, []
        for k, s in enumerate(self.net_grids):
            result = self.run_sampler(
                k,
                up_sample(x, s // prev_s),
                distribute.split_seed(seed, k),
                None,
                num_steps,
                max_steps,
                **overrides,
            )
            x, prev_s = result.samples, s
            out.append(x)
            results.append(result)
        return out, results

    def _sample(self, n, seed, num_steps, max_steps, **overrides) -> tf.Tensor:
        return self._sample_pyramid(n, seed, num_steps, max_steps, **overrides)[-1]

    def _sample_pyramid(self, n, seed, num_steps, max_steps, **overrides) -> list[tf.Tensor]:
        x1 = self.chain_start(n, distribute.split_seed(seed, 1000))
        return self._pyramid(x1, seed, self.steps_or_default(num_steps), max_steps, **overrides)[0]

    def sample_all_grids(
        self, n: int, seed: int = 0, num_steps: int | None = None, **overrides
    ) -> list[tf.Tensor]:
        """Synthesis at every grid: a list of [n, s, s, C] in [0, 1], s = 1, then each net grid.

        The last entry equals `sample(n, seed, num_steps, **overrides)`.
        """
        n, seed = self.check_count_n(n), check_seed(seed)
        steps = -1 if check_num_steps(num_steps) is None else num_steps
        self.check_overrides(overrides, "sample_all_grids()")
        max_steps = max(self.max_num_steps, steps)
        key = ("all_grids", max_steps, overrides_key(overrides))
        fn = self._compiled_sample.get(key)
        if fn is None:
            fn = tf.function(
                lambda n, s, k: [
                    self.from_internal(t) for t in self._sample_pyramid(n, s, k, max_steps, **overrides)
                ]
            )
            self._compiled_sample[key] = fn
        return fn(tf.constant(n, tf.int32), seed_pair(seed), tf.constant(steps, tf.int32))

    # --------------------------------------------------------------------------------------------
    # Inpainting (the public `inpaint` and the served signature are EnergyModel's).
    def _inpaint(self, x: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, **overrides) -> tf.Tensor:
        """Coarse-to-fine sampling restricted to the unknown pixels; [0, 255] in and out.

        At each grid s: the image and the mask are down-sampled; blocks whose pixels are all known
        are fixed at their block mean; blocks with some known pixels start at the mean of those
        known pixels, blocks with none at the up-sampled coarser synthesis; only blocks with
        unknown pixels move.
        """
        S = self.image_size
        known = 1.0 - mask
        grids = [1, *self.net_grids]
        prev = None
        for i, s in enumerate(grids):
            f = S // s
            frac_known = down_sample(tf.broadcast_to(known, tf.shape(x)), f)
            known_mean = down_sample(x * known, f) / tf.maximum(frac_known, 1e-8)
            if i == 0:
                prev = tf.where(frac_known > 0, known_mean, PIXEL_MAX / 2)
                continue
            init = tf.where(frac_known > 0, known_mean, up_sample(prev, s // grids[i - 1]))
            moving = tf.cast(frac_known < 1.0 - 1e-6, x.dtype)
            prev = self.run_sampler(
                i - 1, init, distribute.split_seed(seed, i), mask=moving, **overrides
            ).samples
        return prev

    # --------------------------------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "grids": list(self.grids),
            "mode": self.mode,
            "sampler": self.sampler,
            "num_steps": self.num_steps,
            "step_size": self.step_size,
            "ref_sigma": self.ref_sigma,
            "norm": self.norm,
            "width": self.width,
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "pcd_chains": self.pcd_chains,
            "pcd_mode": self.pcd_mode,
            "pcd_reinit_prob": self.pcd_reinit_prob,
            "colour_bank_size": self.colour_bank_size,
            "jit_compile": self.jit_compile,
            "sampler_options": dict(self.sampler_options),
        }
