r"""The generative ConvNet ("descriptor") — Xie, Lu, Zhu & Wu, ICML 2016 (arXiv:1602.03264).

Model: an exponential tilting of Gaussian white noise q = N(0, σ²I),

    p_θ(x) = exp(f_θ(x)) · q(x) / Z(θ),        E_θ(x) = −f_θ(x) + ‖x‖² / (2σ²),

with f_θ a bottom-up ConvNet (ebm_zoo.nets.EnergyConvNet). With ReLU, f is piecewise linear,
so p is piecewise Gaussian with local mean σ²·∂f/∂x — `reconstruct`.

Sampling: Langevin x ← x − (δ²/2)·∇E(x) + δ·z (ebm_zoo.sampling.langevin), or with
`sampler="mala"|"hmc"` the same target exp(−E/s²) on the pixel box, Metropolis-adjusted per chain
(ebm_zoo.sampling.mcmc.family_sampler; docs/sampling.md), in training and in `sample`.

Learning (maximum likelihood): minimise L = mean f(x̃) − mean f(x_data) over θ, x̃ the
(stop-gradient) synthesised images; chains start from noise, zeros, persistent states (`ml`
mode) or the observed batch (`cd` mode). Following the lab's code, the parameter gradient can be
divided by the number of filters of its layer and clipped to a max-abs value.

Internal pixel scale: x_int = x01 · pixel_scale − pixel_offset (default [0, 255] minus 127.5,
i.e. centred 8-bit values, on which δ = 0.3, σ = 1 were tuned).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ebm_zoo import distribute
from ebm_zoo.models import serving
from ebm_zoo.models.base import EnergyModel, apply_gradients, scale_for_replicas
from ebm_zoo.nets.convnets import EnergyConvNet
from ebm_zoo.sampling import (
    METROPOLIS,
    SAMPLERS,
    ReplayBuffer,
    check_family_sampler,
    langevin,
    make_family_sampler,
    options_for,
    run_family_chain,
)
from ebm_zoo.utils.checks import EbmZooError, check_choice, check_positive

CHAIN_INITS = ("noise", "zeros", "persistent", "data")


@keras.saving.register_keras_serializable(package="ebm_zoo")
class Descriptor(EnergyModel):
    """Generative ConvNet.

    Args:
      image_size, channels, seed: see EnergyModel.
      mode: "texture" (score summed over positions; any synthesis size) or "object"
        (dense top at fixed positions).
      layers: conv layers [[filters, kernel, stride], ...] of f.
      activation: activation of f (ReLU keeps the piecewise-Gaussian reading exact).
      learning: "ml" (chains from `chain_init`) or "cd" (chains start at the observed batch).
      chain_init: for "ml": "noise" (N(0, σ²)), "zeros", or "persistent" (one persistent
        chain per synthesised image, initialised from noise).
      num_chains: synthesised images per step (global); "cd" uses the data batch instead.
      synth_size: spatial size of synthesised images (texture mode may exceed image_size).
      num_steps: Langevin steps T per learning iteration.
      sample_steps: Langevin steps of `sample` from noise (default: num_steps). Models trained
        with persistent chains have run their chains for thousands of steps, so fresh samples
        need many more than T steps to reach the same quality.
      step_size: δ. ref_sigma: σ. noise_scale: multiplier of the Langevin noise (0 = off).
      clip_pixels: clip chains to the valid pixel range after every step.
      pixel_scale, pixel_offset: internal scale x01 · pixel_scale − pixel_offset.
      optimizer: "sgd" (momentum) or "adam"; learning_rate, momentum (β1 for Adam).
      grad_norm_by_filters: divide each parameter gradient by its layer's number of filters.
      grad_clip: max-abs clip of each gradient element after normalisation (0 = off).
      divergence_threshold: |energy| above which training stops as diverged.
      sampler: "langevin" (default, unadjusted), "mala" or "hmc" (Metropolis-adjusted, same
        target exp(−E/s²), step sδ, box = the pixel range when clip_pixels) for training chains
        and `sample`; `sample(..., sampler=...)` overrides it.
      sampler_options: settings of "mala"/"hmc" (ebm_zoo.sampling.FAMILY_SAMPLER_OPTIONS:
        step_size, num_leapfrog_steps, target_accept, adapt_steps, adapt_rate, boundary).
    """

    family = "descriptor"
    sample_overrides = ("size", "sampler", "sampler_options")

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        seed: int = 0,
        mode: str = "texture",
        layers=((64, 7, 2), (64, 5, 2), (64, 3, 1)),
        activation: str = "relu",
        learning: str = "ml",
        chain_init: str = "persistent",
        num_chains: int = 16,
        synth_size: int | None = None,
        num_steps: int = 30,
        sample_steps: int | None = None,
        step_size: float = 0.3,
        ref_sigma: float = 1.0,
        noise_scale: float = 1.0,
        clip_pixels: bool = True,
        pixel_scale: float = 255.0,
        pixel_offset: float = 127.5,
        optimizer: str = "sgd",
        learning_rate: float = 0.01,
        momentum: float = 0.5,
        grad_norm_by_filters: bool = True,
        grad_clip: float = 20.0,
        divergence_threshold: float = 1e12,
        sampler: str = "langevin",
        sampler_options: dict | None = None,
        **kwargs,
    ):
        super().__init__(image_size=image_size, channels=channels, seed=seed, **kwargs)
        check_choice(mode, "mode", ("texture", "object"))
        check_choice(learning, "learning", ("ml", "cd"))
        check_choice(chain_init, "chain_init", CHAIN_INITS)
        check_choice(optimizer, "optimizer", ("sgd", "adam"))
        check_positive(step_size, "step_size")
        check_positive(ref_sigma, "ref_sigma")
        check_positive(num_chains, "num_chains")
        check_positive(num_steps, "num_steps", allow_zero=True)
        check_positive(noise_scale, "noise_scale", allow_zero=True)
        check_positive(grad_clip, "grad_clip", allow_zero=True)
        if synth_size is not None and mode == "object" and int(synth_size) != int(image_size):
            raise EbmZooError(
                f"synth_size={synth_size} differs from image_size={image_size}, which only the "
                f"texture mode supports; use mode='texture' or synth_size=None."
            )
        self.mode = mode
        self.layer_spec = [list(map(int, spec)) for spec in layers]
        self.activation = activation
        self.learning = learning
        self.chain_init = chain_init
        self.num_chains = int(num_chains)
        self.synth_size = int(synth_size) if synth_size else int(image_size)
        self.num_steps = int(num_steps)
        self.sample_steps = int(num_steps if sample_steps is None else sample_steps)
        check_positive(self.sample_steps, "sample_steps", allow_zero=True)
        self.step_size = float(step_size)
        self.ref_sigma = float(ref_sigma)
        self.noise_scale = float(noise_scale)
        self.clip_pixels = bool(clip_pixels)
        self.pixel_scale = float(pixel_scale)
        self.pixel_offset = float(pixel_offset)
        self.optimizer_name = optimizer
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.grad_norm_by_filters = bool(grad_norm_by_filters)
        self.grad_clip = float(grad_clip)
        self.divergence_threshold = float(divergence_threshold)
        self.accepts_any_size = mode == "texture"
        self.sampler = sampler
        self.sampler_options = self._checked_sampler(sampler, sampler_options, type(self).__name__)

        self.net = EnergyConvNet(
            layers=self.layer_spec,
            top="sum" if mode == "texture" else "dense",
            activation=activation,
            name="f",
        )
        self.chains = None
        if learning == "ml" and chain_init == "persistent":
            shape = (self.synth_size, self.synth_size, self.channels)
            self.chains = ReplayBuffer(
                self.num_chains, shape, reinit_prob=0.0, mode="sequential", name="chains"
            )
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "loss",
                "score_data",
                "score_synth",
                "energy_gap",
                "sampler_grad_norm",
                "param_grad_norm",
                *(("accept_rate", "sampler_energy") if sampler in METROPOLIS else ()),
            )
        }

    # --------------------------------------------------------------------------------------
    # Scales and energy.
    @property
    def internal_range(self):  # type: ignore[override]
        return (-self.pixel_offset, self.pixel_scale - self.pixel_offset)

    def score(self, images) -> tf.Tensor:
        """f(x) [N] for public images in [0, 1] (higher = more probable)."""
        x = self.check(images, any_size=self.accepts_any_size)
        return self.net(self.to_internal(x))

    def _energy(self, x):
        ref = tf.reduce_sum(tf.square(x), axis=[1, 2, 3]) / (2.0 * self.ref_sigma**2)
        return -self.net(x) + ref

    def _reconstruct(self, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            f = tf.reduce_sum(self.net(x))
        return self.ref_sigma**2 * tape.gradient(f, x)

    def reconstruct(self, images) -> tf.Tensor:
        """σ²·∂f/∂x: the mean of the local Gaussian piece of x (auto-encoder reading), in [0, 1]."""
        x = self.check(images, any_size=self.accepts_any_size)
        return self.from_internal(self._reconstruct(self.to_internal(x)))

    # --------------------------------------------------------------------------------------
    # Sampling.
    def _clip(self):
        return self.internal_range if self.clip_pixels else None

    def _checked_sampler(self, sampler, options, where: str) -> dict:
        """Validated sampler_options of `sampler` for this model (EbmZooError otherwise)."""
        options = check_family_sampler(sampler, options, choices=SAMPLERS, where=where)
        if sampler in METROPOLIS:  # refuses s = 0 and bad combinations eagerly
            make_family_sampler(
                sampler, options, step_size=self.step_size, noise_scale=self.noise_scale, clip=self._clip()
            )
        return options

    def check_overrides(self, overrides: dict, where: str = "sample()") -> None:
        super().check_overrides(overrides, where)
        if "sampler" in overrides or "sampler_options" in overrides:
            name = overrides.get("sampler") or self.sampler
            opts = options_for(name, self.sampler, self.sampler_options, overrides.get("sampler_options"))
            self._checked_sampler(name, opts, f"{type(self).__name__}.{where}")

    def run_langevin(
        self,
        x0,
        seed,
        num_steps=None,
        trace=False,
        noise_scale=None,
        mask=None,
        max_steps=None,
        sampler=None,
        sampler_options=None,
    ):
        """Internal-scale chain from x0: Langevin (see ebm_zoo.sampling.langevin) or, for
        sampler "mala"/"hmc" (default: the model's `sampler`), the Metropolis-adjusted chain on
        the same target (a `FamilyChain`, which adds accept_rate and energy). num_steps an int
        (default: the training T) or an int32 tensor with a static `max_steps`."""
        steps = self.num_steps if num_steps is None else num_steps
        if max_steps is None:
            max_steps = max(int(steps), 1)
        name = sampler or self.sampler
        if name in METROPOLIS:
            return run_family_chain(
                name,
                options_for(name, self.sampler, self.sampler_options, sampler_options),
                self._energy,
                x0,
                step_size=self.step_size,
                noise_scale=self.noise_scale if noise_scale is None else noise_scale,
                clip=self._clip(),
                num_steps=steps,
                max_steps=max_steps,
                seed=seed,
                mask=mask,
                trace=trace,
            )
        return langevin(
            self._energy,
            x0,
            num_steps=steps,
            max_steps=max_steps,
            step_size=self.step_size,
            seed=seed,
            noise_scale=self.noise_scale if noise_scale is None else noise_scale,
            clip=self._clip(),
            mask=mask,
            trace=trace,
        )

    def langevin(self, images, num_steps: int | None = None, seed: int = 0, trace: bool = False):
        """Runs T Langevin steps from public images; returns (images in [0, 1], energy trace or None)."""
        x = self.check(images, any_size=self.accepts_any_size)
        num_steps, seed = self.check_steps(num_steps), self.seed_tensor(seed, 1)
        res = tf.function(lambda x0: self.run_langevin(x0, seed, num_steps, trace))(self.to_internal(x))
        return self.from_internal(res.samples), res.energy_trace

    @property
    def default_num_steps(self) -> int:
        return self.sample_steps

    def start_from_noise(self, z: tf.Tensor) -> tf.Tensor:
        """The chain start of standard-normal z [n, s, s, C]: σ·z clipped to the pixel range
        (zeros for chain_init="zeros")."""
        if self.chain_init == "zeros":
            return tf.zeros_like(z)
        x = self.ref_sigma * z
        lo, hi = self.internal_range
        return tf.clip_by_value(x, lo, hi) if self.clip_pixels else x

    def chain_start(self, n, seed, size: int | None = None) -> tf.Tensor:
        """[n, s, s, C] internal start states (s = synth_size), this replica's rows of the
        global-batch draw (ebm_zoo.distribute) when called in a replica context."""
        size = self.synth_size if size is None else int(size)
        return self.start_from_noise(distribute.global_normal([n, size, size, self.channels], seed))

    def _sample(self, n, seed, num_steps, max_steps, size=None, sampler=None, sampler_options=None):
        size = self.synth_size if size is None else int(size)
        if size != self.image_size and self.mode == "object":
            raise EbmZooError(
                f"An object-mode descriptor samples only at {self.image_size}px, got size={size}."
            )
        x0 = self.chain_start(n, seed, size)
        return self.run_chain(x0, seed, num_steps, max_steps, sampler, sampler_options)

    def run_chain(self, x0, seed, num_steps, max_steps, sampler=None, sampler_options=None):
        """K = steps_or_default(num_steps) sampler steps from x0 with the noise of `sample`'s seed."""
        k = self.steps_or_default(num_steps)
        return self.run_langevin(
            x0,
            distribute.split_seed(seed, 1),
            k,
            max_steps=max_steps,
            sampler=sampler,
            sampler_options=sampler_options,
        ).samples

    def sampler_settings(self) -> dict:
        keys = ("step_size", "noise_scale", "ref_sigma", "synth_size", "chain_init", "clip_pixels", "sampler")
        out = {**super().sampler_settings(), **{k: getattr(self, k) for k in keys}}
        if self.sampler_options:
            out["sampler_options"] = dict(self.sampler_options)
        return out

    def serving_functions(self) -> dict:
        """The common signatures, `reconstruct`, and `sample_from_noise` (noise float32
        [N, s, s, C] standard normal, seed int64 [], num_steps int32 [] -> {"images"}: row i
        depends only on noise row i; noise = N(0, I) drawn with `sample`'s seed gives `sample`)."""
        out = super().serving_functions()
        images = serving.images_spec(self)
        max_steps, default = int(self.max_num_steps), int(self.default_num_steps)

        def reconstruct(images):
            x = self.to_internal(serving.checked_images(images))
            return {"images": self.from_internal(self._reconstruct(x))}

        def sample_from_noise(noise, seed, num_steps):
            k = serving.checked_steps(num_steps, max_steps, default)
            x0 = self.start_from_noise(noise)
            return {
                "images": self.from_internal(self.run_chain(x0, serving.served_seed_pair(seed), k, max_steps))
            }

        noise = tf.TensorSpec(
            [None, self.synth_size, self.synth_size, self.channels], tf.float32, name="noise"
        )
        out["reconstruct"] = (reconstruct, [images])
        out["sample_from_noise"] = (sample_from_noise, [noise, serving.SEED, serving.NUM_STEPS])
        return out

    def training_grids(self, n: int) -> dict:
        """Extra image grids for the training loop: the persistent chains (the model's own samples)."""
        if self.chains is None:
            return {}
        return {"chains": self.from_internal(self.chains.states[:n]).numpy()}

    # --------------------------------------------------------------------------------------
    # Learning.
    def compile(self, optimizer=None, **kwargs):
        if optimizer is None:
            if self.optimizer_name == "sgd":
                optimizer = keras.optimizers.SGD(self.learning_rate, momentum=self.momentum)
            else:
                optimizer = keras.optimizers.Adam(self.learning_rate, beta_1=self.momentum, epsilon=1e-8)
        super().compile(optimizer=optimizer, **kwargs)

    def build_all(self):
        super().build_all()
        if self.chains is not None and not self.chains.built:
            self.chains.build(None)

    def checkpoint_items(self):
        items = super().checkpoint_items()
        if self.chains is not None:
            items["chains"] = self.chains
        return items

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _process_gradients(self, grads):
        out = []
        for g, v in zip(grads, self.net.trainable_variables):
            if self.grad_norm_by_filters:
                g = g / float(v.shape[-1])  # filters of the layer (last axis of kernel and bias)
            if self.grad_clip > 0:
                g = tf.clip_by_value(g, -self.grad_clip, self.grad_clip)
            out.append(g)
        return out

    def _synth_init(self, x_data, seed):
        """Starting states for this replica (internal scale) and replay indices (or None)."""
        if self.learning == "cd":
            return x_data, None
        _, n_rep = distribute.replica_context_info()
        if self.num_chains % n_rep:
            raise EbmZooError(f"num_chains={self.num_chains} must be divisible by the {n_rep} replicas.")
        local = self.num_chains // n_rep

        if self.chains is not None:
            return self.chains.draw(local, seed, self.chain_start)
        return self.chain_start(local, seed), None

    def _training_score(self, x):
        """f(x) [N] on the scale of a training image: texture scores are per-position means times
        the number of top-layer positions of an `image_size` image, so synthesised images of a
        different size (synth_size) are compared fairly; equal to f(x) at equal sizes."""
        if self.mode != "texture":
            return self.net(x)
        if not hasattr(self, "_train_positions"):
            h = self.net.head(self.net.features(tf.zeros([1, *self.image_shape])))
            self._train_positions = float(h.shape[1] * h.shape[2])
        return self.net(x, per_position=True) * self._train_positions

    def train_step(self, data):
        """One maximum-likelihood (or CD) iteration: synthesise, then the two score terms."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        x_data = self.to_internal(data)
        seed = self.step_seed(0)
        x0, idx = self._synth_init(x_data, distribute.split_seed(seed, 0))
        chain = self.run_langevin(x0, distribute.split_seed(seed, 1))
        x_synth = tf.stop_gradient(chain.samples)
        if idx is not None:
            self.chains.update(idx, x_synth)

        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            score_data = tf.reduce_mean(self._training_score(x_data))
            score_synth = tf.reduce_mean(self._training_score(x_synth))
            loss = score_synth - score_data
            scaled = scale_for_replicas(loss)
        grads = tape.gradient(scaled, variables)
        process = self._process_gradients if (self.grad_norm_by_filters or self.grad_clip > 0) else None
        grads = apply_gradients(self.optimizer, grads, variables, process)

        gnorm = tf.linalg.global_norm(grads)
        self.trackers["loss"].update_state(loss)
        self.trackers["score_data"].update_state(score_data)
        self.trackers["score_synth"].update_state(score_synth)
        self.trackers["energy_gap"].update_state(score_data - score_synth)
        self.trackers["sampler_grad_norm"].update_state(chain.grad_norm)
        self.trackers["param_grad_norm"].update_state(gnorm)
        if self.sampler in METROPOLIS:
            self.trackers["accept_rate"].update_state(tf.reduce_mean(chain.accept_rate))
            self.trackers["sampler_energy"].update_state(tf.reduce_mean(chain.energy))
        return {name: t.result() for name, t in self.trackers.items()}

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            mode=self.mode,
            layers=self.layer_spec,
            activation=self.activation,
            learning=self.learning,
            chain_init=self.chain_init,
            num_chains=self.num_chains,
            synth_size=self.synth_size,
            num_steps=self.num_steps,
            sample_steps=self.sample_steps,
            step_size=self.step_size,
            ref_sigma=self.ref_sigma,
            noise_scale=self.noise_scale,
            clip_pixels=self.clip_pixels,
            pixel_scale=self.pixel_scale,
            pixel_offset=self.pixel_offset,
            optimizer=self.optimizer_name,
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            grad_norm_by_filters=self.grad_norm_by_filters,
            grad_clip=self.grad_clip,
            divergence_threshold=self.divergence_threshold,
            sampler=self.sampler,
            sampler_options=dict(self.sampler_options),
        )
        return cfg
