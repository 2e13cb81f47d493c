"""Input validation with errors that name the offending value and the fix.

Public API images are float32 NHWC in [0, 1]. Every public entry point calls
`check_images` before it converts to its own internal scale.
"""
# ruff: noqa: F821 (annotations name tf.Tensor; tf is imported inside each function that uses it)

from __future__ import annotations

import numpy as np

# TensorFlow is imported inside the functions that need it, so that tools can validate their
# flags (and print one line) without paying for -- or hearing -- a TensorFlow import.


class EbmZooError(ValueError):
    """Raised for bad user input; the message says what was wrong and what to do."""


def _summary(x) -> str:
    return f"shape {tuple(x.shape)}, dtype {x.dtype.name if hasattr(x.dtype, 'name') else x.dtype}"


def check_images(
    images,
    *,
    name: str = "images",
    channels: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    tolerance: float = 1e-3,
    allow_empty: bool = True,
) -> tf.Tensor:
    """Validates a batch of NHWC images and returns it as a float32 tensor.

    Args:
      images: array-like of shape [N, H, W, C].
      name: the argument name used in error messages.
      channels: the expected number of channels C, or None for any.
      image_size: expected H (== W) or (H, W), or None for any.
      value_range: (low, high) the values must lie in, or None to skip the check.
        Checked only for eager tensors (inside a graph the check is skipped).
      tolerance: slack allowed on the range check.
      allow_empty: accept a batch of 0 images (metrics do); the models' public methods pass
        False (EnergyModel.check): an empty batch there is almost always a bug upstream.

    Raises:
      EbmZooError: None, strings, ragged lists, wrong rank, empty batch, 0-pixel images, wrong
        channels, size, range, or non-finite values.
    """
    import tensorflow as tf

    if images is None:
        raise EbmZooError(f"`{name}` is None; pass a float32 array [N, H, W, C] in [0, 1].")
    if isinstance(images, (str, bytes)):
        raise EbmZooError(f"`{name}` must be an image array [N, H, W, C], got the string {images[:50]!r}.")
    try:
        x = tf.convert_to_tensor(images)
    except (ValueError, TypeError) as e:
        raise EbmZooError(
            f"`{name}` is not a rectangular numeric array ({type(images).__name__}: {str(e)[:120]}); "
            "pass a float32 array [N, H, W, C] in [0, 1] whose images all have the same shape."
        ) from None
    if not x.dtype.is_floating:
        if x.dtype == tf.uint8:
            raise EbmZooError(
                f"`{name}` is uint8 ({_summary(x)}); ebm_zoo takes float32 images in [0, 1]: "
                f"pass `{name} / 255.0`."
            )
        raise EbmZooError(f"`{name}` must be a float tensor in [0, 1], got {_summary(x)}.")
    x = tf.cast(x, tf.float32)
    if x.shape.rank is not None and x.shape.rank != 4:
        hint = " Add a batch axis with `x[None]`." if x.shape.rank == 3 else ""
        raise EbmZooError(f"`{name}` must be a 4-D NHWC batch [N, H, W, C], got {_summary(x)}.{hint}")
    if x.shape.rank == 4 and not allow_empty and x.shape[0] == 0:
        raise EbmZooError(f"`{name}` is an empty batch ({_summary(x)}); pass at least one image.")
    if x.shape.rank == 4 and 0 in tuple(x.shape[1:]):
        raise EbmZooError(f"`{name}` has images with no pixels ({_summary(x)}); H, W and C must be >= 1.")
    if channels is not None and x.shape[-1] is not None and x.shape[-1] != channels:
        raise EbmZooError(
            f"`{name}` has {x.shape[-1]} channels ({_summary(x)}) but this model expects "
            f"{channels}; convert the images (e.g. tf.image.grayscale_to_rgb / rgb_to_grayscale)."
        )
    if image_size is not None:
        hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        got = tuple(x.shape[1:3])
        if None not in got and got != hw:
            raise EbmZooError(
                f"`{name}` has spatial size {got} ({_summary(x)}) but this model expects {hw}; "
                f"resize with tf.image.resize(images, {hw})."
            )
    if tf.executing_eagerly():
        arr = x.numpy()
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise EbmZooError(f"`{name}` contains {bad} NaN/inf values ({_summary(x)}); clean the input.")
        if value_range is not None and arr.size:
            lo, hi = float(arr.min()), float(arr.max())
            if lo < value_range[0] - tolerance or hi > value_range[1] + tolerance:
                hint = ""
                if hi > 1.5 and value_range == (0.0, 1.0):
                    hint = " It looks like [0, 255]: divide by 255."
                elif lo < -tolerance and value_range == (0.0, 1.0):
                    hint = " It looks like [-1, 1]: map with (x + 1) / 2."
                raise EbmZooError(
                    f"`{name}` values lie in [{lo:.4g}, {hi:.4g}] but must lie in "
                    f"[{value_range[0]}, {value_range[1]}].{hint}"
                )
    return x


def check_positive(value, name: str, *, allow_zero: bool = False) -> None:
    """Raises EbmZooError unless `value` > 0 (or >= 0 with allow_zero)."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        rel = ">= 0" if allow_zero else "> 0"
        raise EbmZooError(f"`{name}` must be {rel}, got {value!r}.")


def check_choice(value, name: str, choices) -> None:
    """Raises EbmZooError unless `value` is one of `choices` (listed in the message)."""
    if value not in choices:
        raise EbmZooError(f"Unknown {name} {value!r}; valid values: {', '.join(map(str, choices))}.")


# ------------------------------------------------------------------------------------------------
# Scalar arguments of public methods and tools. Each returns the clean value or raises one
# EbmZooError naming the argument, the value and the fix.

#: Seeds are ints in [0, SEED_LIMIT); they map one-to-one onto a stateless [2] int32 seed pair.
SEED_LIMIT = 2**62


def _is_int_like(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_count(value, name: str = "n", *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer count in [minimum, maximum]; floats, bools and strings are refused (no truncation)."""
    if not _is_int_like(value):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            hint = f" pass {int(value)}"
        else:
            hint = " pass a whole number"
        raise EbmZooError(f"`{name}` must be an int, got {value!r} ({type(value).__name__});{hint}.")
    value = int(value)
    if value < minimum:
        what = " (a positive whole number)" if minimum == 1 else ""
        raise EbmZooError(f"`{name}` must be >= {minimum}, got {value}{what}.")
    if maximum is not None and value > maximum:
        raise EbmZooError(f"`{name}` must be <= {maximum}, got {value}; use a smaller value.")
    return value


def check_seed(seed, name: str = "seed") -> int | None:
    """None (fresh randomness) or an int in [0, 2**62); anything else is refused."""
    if seed is None:
        return None
    if not _is_int_like(seed):
        raise EbmZooError(
            f"`{name}` must be an int in [0, 2**62) or None, got {seed!r} ({type(seed).__name__})."
        )
    seed = int(seed)
    if not 0 <= seed < SEED_LIMIT:
        raise EbmZooError(
            f"`{name}` must lie in [0, 2**62), got {seed}; pick a non-negative seed below 2**62."
        )
    return seed


def seed_pair(seed: int) -> tf.Tensor:
    """The stateless [2] int32 seed of a checked int seed (seeds < 2**31 - 1 give [seed, 0])."""
    import tensorflow as tf

    seed = int(seed)
    return tf.constant([seed % 2**31, seed >> 31], tf.int32)


def check_num_steps(value, name: str = "num_steps", *, allow_none: bool = True) -> int | None:
    """A number of sampler steps: None (the model's default) or an int >= 0."""
    if value is None and allow_none:
        return None
    return check_count(value, name, minimum=0)


def stream_seed(seed, stream: int = 0, name: str = "seed") -> tf.Tensor:
    """The stateless [2] int32 seed of (checked int seed, stream) for public methods.

    Seeds below 2**31 give [seed, stream] (what the families used before the checks); larger
    seeds (up to 2**62) fold the stream into their one-to-one `seed_pair`.
    """
    import tensorflow as tf

    seed = check_seed(seed, name)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    if seed < 2**31:
        return tf.constant([seed, int(stream)], tf.int32)
    return tf.random.experimental.stateless_fold_in(seed_pair(seed), int(stream))


def check_number(
    value,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_minimum: bool = False,
) -> float:
    """A finite real number (not a bool or a string) in [minimum, maximum] (or (minimum, ...])."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise EbmZooError(f"`{name}` must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise EbmZooError(f"`{name}` must be a finite number, got {value!r}.")
    if minimum is not None and (value <= minimum if open_minimum else value < minimum):
        rel = ">" if open_minimum else ">="
        raise EbmZooError(f"`{name}` must be {rel} {minimum:g}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise EbmZooError(f"`{name}` must be <= {maximum:g}, got {value!r}.")
    return value


def check_tolerance(value, name: str = "rtol") -> float:
    """An ODE / solver tolerance: a finite float in (0, 1)."""
    value = check_number(value, name, minimum=0.0, open_minimum=True)
    if value >= 1.0:
        raise EbmZooError(f"`{name}` must lie in (0, 1), got {value!r}; typical values are 1e-3 to 1e-6.")
    return value


def check_fraction(value, name: str, *, allow_zero: bool = True) -> float:
    """A fraction in [0, 1] ((0, 1] without allow_zero), e.g. a drop rate or box fraction."""
    return check_number(value, name, minimum=0.0, maximum=1.0, open_minimum=not allow_zero)


def check_mask(mask, n: int, image_size: int, channels: int, *, name: str = "mask") -> tf.Tensor:
    """An inpainting mask for images [n, S, S, C], as float32 [n, S, S, 1 or C] of {0, 1}.

    Accepted shapes: [S, S], [S, S, 1|C], [N, S, S] or [N, S, S, 1|C] with N in (1, n);
    1 = unknown pixel (to fill), 0 = known (kept). Anything else (other shapes, values other
    than 0 and 1 such as 0.5, NaN, strings, None) raises EbmZooError with the expected shape.
    """
    import tensorflow as tf

    S, C = int(image_size), int(channels)
    if mask is None:
        raise EbmZooError(f"`{name}` is None; pass a 0/1 array [N, {S}, {S}, 1] (1 = pixel to fill).")
    try:
        m = np.asarray(mask)
    except ValueError as e:  # ragged nested lists
        raise EbmZooError(
            f"`{name}` is not a rectangular array ({e}); pass a 0/1 array [N, {S}, {S}, 1]."
        ) from e
    if m.dtype == object or not (np.issubdtype(m.dtype, np.number) or m.dtype == np.bool_):
        raise EbmZooError(f"`{name}` must be a numeric 0/1 array, got dtype {m.dtype}.")
    if m.ndim == 2:
        m = m[None, :, :, None]
    elif m.ndim == 3:
        m = m[None] if m.shape[-1] in (1, C) and m.shape[:2] == (S, S) else m[..., None]
    if m.ndim != 4 or m.shape[1:3] != (S, S) or m.shape[0] not in (1, n) or m.shape[3] not in (1, C):
        raise EbmZooError(
            f"`{name}` has shape {np.shape(mask)} but must be [{S}, {S}], [N, {S}, {S}] or "
            f"[N, {S}, {S}, 1 or {C}] with N in (1, {n}) for images [{n}, {S}, {S}, {C}]; "
            f"build one with ebm_zoo.models.multigrid.make_mask(kind, {S}, n)."
        )
    m = m.astype(np.float32)
    binary = (m == 0) | (m == 1)
    if not np.all(binary):
        bad = np.unique(m[~binary])[:5]
        raise EbmZooError(
            f"`{name}` must be binary (1 = unknown pixel, 0 = known), found values {bad.tolist()}; "
            f"threshold it, e.g. (mask > 0.5).astype('float32')."
        )
    return tf.broadcast_to(tf.constant(m), [n, S, S, m.shape[3]])


# ------------------------------------------------------------------------------------------------
# Memory: a clear refusal before a sampler allocates more than the machine has.


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else physical pages x page size, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


#: Largest batch a compiled sampler takes (its batch size is an int32 tensor).
MAX_BATCH = 2**31 - 1


def check_sample_memory(
    n: int,
    image_shape,
    *,
    copies: int = 64,
    name: str = "n",
    available: int | None = None,
) -> int:
    """Refuses a sample count whose working set cannot fit in memory; returns the estimate.

    The estimate is `n · H·W·C · 4 bytes · copies`: a sampler keeps a few copies of the batch
    (state, gradient, noise, proposals) plus the network's activations, which are a multiple of
    the image size per image (`copies`, the class attribute `sample_memory_copies` of a family,
    64 by default). It is a rough working-set estimate, not a guarantee either way: it refuses
    the n that cannot possibly fit (2**40, 10**8) in microseconds instead of an out-of-memory
    error after minutes, and n above 2**31 - 1 (a compiled sampler's int32 batch size) always.
    Draw larger sets in chunks with distinct seeds (chunking changes which noise each image
    gets, so it is the caller's choice, not done silently).
    """
    per_image = int(np.prod(image_shape)) * 4 * int(copies)
    need = int(n) * per_image
    if available is None:
        available = available_memory_bytes()
    if n > MAX_BATCH or (available is not None and need > available):
        have = "unknown" if available is None else f"{available / 2**30:.3g} GiB available"
        fit = max(1, min(MAX_BATCH, (available or 0) // max(per_image, 1)))
        raise EbmZooError(
            f"`{name}`={n} samples of shape {tuple(image_shape)} need about {need / 2**30:.3g} GiB "
            f"(estimate; {have}). Draw them in chunks of at most ~{fit}, e.g. "
            f"np.concatenate([model.sample(k, seed=s) for s in range(...)]) with distinct seeds."
        )
    return need


# ------------------------------------------------------------------------------------------------
# Names, handles and paths.

_NAME_CHARS = "letters, digits, '_', '-' and '.'"


def check_preset_name(name, what: str = "preset") -> str:
    """A preset name: a plain name such as 'ggcn_lfw', never a path.

    Refused: non-strings, '', '.', '..', names containing '/', '\\', a drive or NUL, absolute
    paths, names starting with '.' or '-' and anything outside letters, digits, '_', '-', '.'.
    """
    import re

    if not isinstance(name, str):
        raise EbmZooError(f"The {what} name must be a string, got {name!r} ({type(name).__name__}).")
    bad = (
        not name
        or name in (".", "..")
        or any(c in name for c in ("/", "\\", ":", "\0"))
        or ".." in name
        or name.startswith((".", "-", "~"))
        or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", name)
    )
    if bad:
        raise EbmZooError(
            f"Invalid {what} name {name!r}: a {what} name is a plain name ({_NAME_CHARS}, e.g. "
            f"'my_ggcn'), never a path; it is written under its root directory only. To write a "
            f"SavedModel elsewhere use --out=DIR/1."
        )
    return name


def check_inside(path, root, name: str = "path"):
    """`path` resolved (symlinks followed) must lie strictly inside `root`; returns it as a Path."""
    from pathlib import Path

    root_r = Path(root).expanduser().resolve()
    path_r = Path(path).expanduser().resolve()
    if path_r == root_r or root_r not in path_r.parents:
        raise EbmZooError(
            f"`{name}` {str(path)!r} resolves to {path_r}, outside {root_r}; refusing to write there."
        )
    return path_r


def check_handle(handle, name: str = "handle") -> str:
    """A model handle (preset name, directory or URI): a non-empty str or os.PathLike."""
    import os

    if isinstance(handle, os.PathLike):
        handle = os.fspath(handle)
    if not isinstance(handle, str):
        raise EbmZooError(
            f"`{name}` must be a preset name, a directory path or a URI (str or pathlib.Path), got "
            f"{handle!r} ({type(handle).__name__}); see ebm_zoo.list_models()."
        )
    if not handle.strip():
        raise EbmZooError(f"`{name}` is empty; pass a preset name (see ebm_zoo.list_models()) or a path.")
    if "\0" in handle:
        raise EbmZooError(f"`{name}` {handle!r} contains a NUL byte.")
    return handle


def check_output_dir(path, name: str = "out", *, must_be_new: bool = False, overwrite: bool = False):
    """A directory the caller is about to create or fill: returns it as an absolute Path.

    Refused: an existing file at `path` or at any of its ancestors (e.g. '<file>/1'), an
    existing directory when `must_be_new` and not `overwrite`, and a nearest existing ancestor
    that is not writable.
    """
    import os
    from pathlib import Path

    if path is None or (isinstance(path, str) and not path.strip()):
        raise EbmZooError(f"`{name}` is empty; pass a directory path.")
    p = Path(os.fspath(path)).expanduser().absolute()
    if p.exists() and not p.is_dir():
        raise EbmZooError(f"`{name}` {str(path)!r} is an existing file, not a directory; pick another path.")
    if p.is_dir() and must_be_new and not overwrite:
        raise EbmZooError(
            f"`{name}` {str(path)!r} already exists; pass --overwrite (overwrite=True) to replace it, "
            "or pick another path."
        )
    anc = p if p.exists() else p.parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise EbmZooError(
            f"`{name}` {str(path)!r} cannot be created: {anc} is a file, not a directory; pick another path."
        )
    if not os.access(anc, os.W_OK | os.X_OK):
        raise EbmZooError(
            f"`{name}` {str(path)!r} cannot be written: {anc} is not writable; pick another path."
        )
    return p


# ------------------------------------------------------------------------------------------------
# Sampler settings passed as **overrides to sample().

_OVERRIDE_CHECKS = {
    "num_steps": lambda v, k: check_num_steps(v, k),
    "size": lambda v, k: check_count(v, k),
    "step_size": lambda v, k: check_number(v, k, minimum=0.0, open_minimum=True),
    "noise_scale": lambda v, k: check_number(v, k, minimum=0.0),
    "implicit_iters": lambda v, k: check_count(v, k),
    "max_solver_steps": lambda v, k: check_count(v, k),
    "rtol": lambda v, k: check_tolerance(v, k),
    "atol": lambda v, k: check_tolerance(v, k),
}


def check_sampler_overrides(overrides: dict, allowed, *, where: str = "sample()") -> dict:
    """Checks `**overrides` of a sampler eagerly (before anything is traced).

    Args:
      overrides: the keyword arguments given.
      allowed: the setting names the family accepts, or None (the family validates them).
      where: the method, for the message.

    Known names are value-checked (num_steps int >= 0, size int >= 1, step_size > 0,
    noise_scale >= 0, implicit_iters / max_solver_steps int >= 1, rtol / atol in (0, 1),
    trace bool, sampler / solver str). Returns `overrides` unchanged.
    """
    if allowed is not None:
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            import difflib

            close = [m for k in unknown for m in difflib.get_close_matches(k, list(allowed), n=1)]
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise EbmZooError(
                f"Unknown sampler setting(s) {', '.join(unknown)} for {where};{hint} valid: "
                f"{', '.join(allowed) or 'none'}."
            )
    for key, value in overrides.items():
        if value is None:
            continue
        if key in _OVERRIDE_CHECKS:
            _OVERRIDE_CHECKS[key](value, key)
        elif key == "trace" and not isinstance(value, (bool, np.bool_)):
            raise EbmZooError(f"`trace` must be True or False, got {value!r}.")
        elif key in ("sampler", "solver") and not isinstance(value, str):
            raise EbmZooError(f"`{key}` must be a string, got {value!r} ({type(value).__name__}).")
    return overrides


def as_float_tensor(value, name: str):
    """`value` as a float32 tensor; None, strings and ragged lists raise EbmZooError."""
    import tensorflow as tf

    if value is None or isinstance(value, (str, bytes)):
        raise EbmZooError(f"`{name}` must be a float array, got {value!r}.")
    try:
        return tf.convert_to_tensor(value, tf.float32)
    except (ValueError, TypeError) as e:
        raise EbmZooError(
            f"`{name}` is not a rectangular float array ({' '.join(str(e).split())[:120]})."
        ) from None
