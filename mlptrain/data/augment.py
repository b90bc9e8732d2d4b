"""Data augmentation: random geometric distortions of training batches, from a table.

Every augmentation is a random map from a pixel of the image the net sees to
the point of the original image it takes its value from. Several augmentations
compose into one such map, so a batch is resampled once (bilinear, zero outside
the image) however many are listed; the uint8 batch goes in and the net's
float batch in ``[0, 1]`` comes out.

An augmentation is written ``name`` or ``name:key=value:key=value`` (e.g.
``elastic:alpha=34:sigma=4``); ``canonical`` fills in every parameter, so a
run's config.yaml records exactly what it was trained with. The randomness of
each batch comes from its own generator (see ``batch_rng``), so a batch's
distortion depends only on the seed and the optimizer step it feeds: preparing
batches ahead in another thread, or resuming a run, changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np

from mlptrain.errors import ConfigError

Array = np.ndarray
Grid = tuple[Array, Array]  # source rows and columns, each (n, H, W), centred on the image's middle


@dataclass(frozen=True)
class Param:
    """One numeric parameter of an augmentation."""

    default: float
    low: float
    high: float
    help: str
    integer: bool = False

    def parse(self, value: Any) -> float:
        number = _number(value)
        if number is None or not self.low <= number <= self.high or (self.integer and number != int(number)):
            kind = "a whole number" if self.integer else "a number"
            raise ValueError(f"{kind} from {self.low:g} to {self.high:g}")
        return int(number) if self.integer else number


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


Warp = Callable[[Grid, np.random.Generator, dict[str, float]], Grid]


@dataclass(frozen=True)
class Augmentation:
    """A table entry: what it does, its parameters, and how it moves the sampling grid."""

    name: str
    help: str
    params: dict[str, Param]
    warp: Warp
    mirrors: bool = False  # changes handedness: wrong for digits and characters
    # Calls no BLAS, so a worker thread can prepare it during the step. OpenBLAS serialises its
    # callers: a worker's small matmul waits for the step's own large product, which makes an
    # augmentation that calls BLAS slower prepared ahead than in line (benchmarks/NOTES.md).
    threadable: bool = True


def _shift(grid: Grid, rng: np.random.Generator, p: dict[str, float]) -> Grid:
    """Whole-pixel translations, so the image is moved, never blurred."""
    rows, cols = grid
    k = int(p["pixels"])
    dy, dx = (rng.integers(-k, k + 1, size=(2, len(rows), 1, 1))).astype(rows.dtype)
    return rows - dy, cols - dx


def _affine(grid: Grid, rng: np.random.Generator, p: dict[str, float]) -> Grid:
    """Rotation, isotropic scaling and shear about the centre, then a translation."""
    rows, cols = grid
    n = len(rows)
    angle = np.radians(rng.uniform(-p["rotate"], p["rotate"], n))
    shear = np.tan(np.radians(rng.uniform(-p["shear"], p["shear"], n)))
    zoom = rng.uniform(1 - p["scale"], 1 + p["scale"], n)
    move = rng.uniform(-p["translate"], p["translate"], (2, n))
    cos, sin = (np.cos(angle) / zoom).astype(np.float32), (np.sin(angle) / zoom).astype(np.float32)
    shear, move = shear.astype(np.float32), move.astype(np.float32)
    # The inverse map's matrix: rotate by -angle and unscale, then unshear along the rows.
    a, b = cos, sin + shear * cos
    c, d = -sin, cos - shear * sin
    shape = (n, 1, 1)
    y, x = rows - move[0].reshape(shape), cols - move[1].reshape(shape)
    new_cols = a.reshape(shape) * x + b.reshape(shape) * y
    new_rows = c.reshape(shape) * x + d.reshape(shape) * y
    return new_rows, new_cols


@lru_cache(maxsize=16)
def gaussian_matrix(size: int, sigma: float) -> Array:
    """``G @ v`` smooths ``v`` (length ``size``) with a Gaussian of std ``sigma`` (truncated at 4 sigma,
    zero beyond the edge), so ``G @ field @ G.T`` is a 2-D Gaussian filter as a pair of small matmuls."""
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    matrix = np.exp(-0.5 * (offsets / sigma) ** 2) / taps.sum()
    matrix[np.abs(offsets) > radius] = 0.0
    return matrix.astype(np.float32)


def _elastic(grid: Grid, rng: np.random.Generator, p: dict[str, float]) -> Grid:
    """Simard, Steinkraus and Platt (2003): uniform random displacements in [-1, 1], smoothed by a
    Gaussian of std sigma, times alpha (alpha 34, sigma 4 in the paper)."""
    rows, cols = grid
    n, height, width = rows.shape
    field = rng.random((2 * n * height, width), dtype=np.float32)
    field *= np.float32(2 * p["alpha"])  # U(-1, 1) times alpha: smoothing is linear, so scale first
    field -= np.float32(p["alpha"])
    # Along the columns, then along the rows: two single matrix products (a batched 28 x 28 matmul is
    # several times slower), leaving the result transposed.
    along_cols = (field @ gaussian_matrix(width, p["sigma"]).T).reshape(2 * n, height, width)
    smooth = along_cols.transpose(0, 2, 1).reshape(-1, height) @ gaussian_matrix(height, p["sigma"]).T
    smooth = smooth.reshape(2, n, width, height).transpose(0, 1, 3, 2)
    if rows.strides[0] == 0 and cols.strides[0] == 0:
        # Still the broadcast pixel grid (no augmentation listed after this one moved it): the field's own
        # values; interpolating at whole pixels would give the same numbers, slower.
        return rows + smooth[0], cols + smooth[1]
    moved = _at_points(smooth, rows, cols)
    return rows + moved[0], cols + moved[1]


def _at_points(field: Array, rows: Array, cols: Array) -> list[Array]:
    """Each component of a field ``(k, n, H, W)`` on the pixel grid, read bilinearly at the centred points
    ``rows``/``cols`` ``(n, H, W)`` and extended by its edge values outside the frame. For elastic: the
    displacement where the augmentations listed after it sample its output, so the composition is exactly
    elastic, then those."""
    _, n, height, width = field.shape
    r, c = rows + np.float32((height - 1) / 2), cols + np.float32((width - 1) / 2)
    np.clip(r, 0, height - 1, out=r)
    np.clip(c, 0, width - 1, out=c)
    r0, c0 = np.floor(r), np.floor(c)
    r -= r0  # now the weights of the lower row and the right column
    c -= c0
    index = r0.astype(np.intp)
    index *= width
    index += c0.astype(np.intp)
    index += (np.arange(n, dtype=np.intp) * (height * width))[:, None, None]
    right = index + (c0 < width - 1)  # on the last column (or row) the neighbour is the pixel itself
    down = (r0 < height - 1).astype(np.intp) * width
    out = []
    for component in field:  # one flat gather at a time: several times faster than indexing (k, n, H, W)
        flat = component.reshape(-1)
        top, top_right = flat.take(index), flat.take(right)
        bottom, bottom_right = flat.take(index + down), flat.take(right + down)
        top_right -= top
        top_right *= c
        top += top_right
        bottom_right -= bottom
        bottom_right *= c
        bottom += bottom_right
        bottom -= top
        bottom *= r
        top += bottom
        out.append(top)
    return out


def _hflip(grid: Grid, rng: np.random.Generator, p: dict[str, float]) -> Grid:
    rows, cols = grid
    flip = rng.random(len(rows)) < p["probability"]
    return rows, np.where(flip[:, None, None], -cols, cols).astype(cols.dtype, copy=False)


AUGMENTATIONS: dict[str, Augmentation] = {
    a.name: a
    for a in [
        Augmentation("shift", "random whole-pixel translation", {
            "pixels": Param(2, 1, 20, "largest move along each axis, in pixels", integer=True),
        }, _shift),
        Augmentation("affine", "random rotation, scaling, shear and translation", {
            "rotate": Param(10.0, 0, 180, "largest rotation, in degrees"),
            "scale": Param(0.1, 0, 0.5, "largest relative change of size (0.1: 90% to 110%)"),
            "shear": Param(10.0, 0, 45, "largest shear angle, in degrees"),
            "translate": Param(2.0, 0, 20, "largest translation along each axis, in pixels"),
        }, _affine),
        Augmentation("elastic", "elastic distortion (Simard et al. 2003)", {
            "alpha": Param(34.0, 0, 1000, "strength: the smoothed displacement field's scale, in pixels"),
            "sigma": Param(4.0, 0.5, 100, "smoothness: the Gaussian's std, in pixels"),
        }, _elastic, threadable=False),
        Augmentation("hflip", "left-right mirror image (not for digits or characters)", {
            "probability": Param(0.5, 0, 1, "share of the images mirrored"),
        }, _hflip, mirrors=True),
    ]
}


def augmentation_names() -> list[str]:
    return list(AUGMENTATIONS)


def parse_augment(value: Any) -> tuple[str, ...]:
    """The config's ``augment``: a list (or a comma string) of ``name`` / ``name:key=value…`` items, or
    one-key mappings ``{name: {key: value}}``, as canonical strings with every parameter filled in.

    ValueError names what is allowed.
    """
    if value in ("", [], "none"):
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(_ALLOWED)
    specs = [canonical(*_split(item)) for item in items]
    names = [spec.split(":")[0] for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"each augmentation at most once ({', '.join(repeated)} is repeated)")
    return tuple(specs)


_ALLOWED = (
    "a list of augmentations from " + ", ".join(AUGMENTATIONS)
    + ", each 'name' or 'name:key=value', e.g. affine,elastic:alpha=34:sigma=4"
)


def _split(item: Any) -> tuple[str, Mapping[str, Any]]:
    """An item as (name, given parameters)."""
    if isinstance(item, dict) and len(item) == 1:
        name, params = next(iter(item.items()))
        if params is None:
            params = {}
        if not isinstance(name, str) or not isinstance(params, dict):
            raise ValueError(_ALLOWED)
        return name.strip(), params
    if not isinstance(item, str) or not item.strip():
        raise ValueError(_ALLOWED)
    name, *pairs = item.strip().split(":")
    params: dict[str, str] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals:
            raise ValueError(f"parameters written key=value (e.g. elastic:alpha=34), not {pair!r}")
        if key.strip() in params:  # the last would silently win: say which one was meant
            raise ValueError(f"each parameter once ({name}'s {key.strip()} is given twice)")
        params[key.strip()] = text.strip()
    return name, params


def canonical(name: str, given: Mapping[str, Any]) -> str:
    """``name:key=value…`` with every parameter of ``name``, in the table's order."""
    spec = AUGMENTATIONS.get(name)
    if spec is None:
        raise ValueError(f"{_ALLOWED} ({name!r} is not one of them)")
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        raise ValueError(f"{name}'s parameters to be among {', '.join(spec.params)} (not {unknown[0]!r})")
    values = {}
    for key, param in spec.params.items():
        try:
            values[key] = param.parse(given.get(key, param.default))
        except ValueError as exc:
            raise ValueError(f"{name}'s {key} to be {exc}") from None
    return ":".join([name, *(f"{key}={value:g}" for key, value in values.items())])


def parse_spec(spec: str) -> tuple[Augmentation, dict[str, float]]:
    """A canonical item back as its table entry and parameter values."""
    name, params = _split(spec)
    entry = AUGMENTATIONS[name]
    return entry, {key: entry.params[key].parse(value) for key, value in params.items()}


@lru_cache(maxsize=32)
def _warps_last_first(specs: tuple[str, ...]) -> tuple[tuple[Augmentation, dict[str, float]], ...]:
    """``specs`` parsed once per run, not once per batch, last first (the order the grid is warped in).
    Cached: callers only read the entries and the parameter dicts."""
    return tuple(parse_spec(spec) for spec in reversed(specs))


def threadable(specs: tuple[str, ...]) -> bool:
    """Whether every augmentation of ``specs`` may run in a worker thread beside the training step."""
    return all(parse_spec(spec)[0].threadable for spec in specs)


def check_mirroring(specs: tuple[str, ...], dataset: str, mirror_safe: bool) -> None:
    """ConfigError when a mirroring augmentation is asked for on a data set whose classes it changes."""
    for spec in specs:
        entry, _ = parse_spec(spec)
        if entry.mirrors and not mirror_safe:
            raise ConfigError(
                f"augment {entry.name} mirrors images, which changes {dataset}'s classes (a mirrored 2 is "
                "not a 2): leave it out, and use shift, affine or elastic"
            )


def batch_rng(seed: np.random.SeedSequence, step: int) -> np.random.Generator:
    """The generator of one batch's distortions: a function of the run's augmentation seed and the
    optimizer step the batch feeds, and of nothing else."""
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, step)))


@lru_cache(maxsize=8)
def _base_grid(height: int, width: int) -> Grid:
    rows, cols = np.mgrid[:height, :width].astype(np.float32)
    return rows - (height - 1) / 2, cols - (width - 1) / 2


CHUNK = 16  # images resampled together: small enough that no temporary reaches malloc's mmap threshold


def augment_batch(
    images: Array, shape: tuple[int, int], specs: tuple[str, ...], rng: np.random.Generator, out: Array,
) -> Array:
    """uint8 images ``(n, H*W)`` distorted by ``specs`` (applied in order) into ``out``, float ``(n, H*W)``
    in [0, 1]; returns ``out``.

    Works through the batch CHUNK images at a time: whole-batch temporaries (a few hundred kB each)
    would be fresh mmaps, and their page faults cost more than the arithmetic (benchmarks/NOTES.md).
    """
    parsed = _warps_last_first(specs)
    for start in range(0, len(images), CHUNK):
        chunk = images[start:start + CHUNK]
        rows, cols = _sampling_grid(len(chunk), shape, parsed, rng)
        out[start:start + len(chunk)] = resample(chunk.reshape(-1, *shape), rows, cols).reshape(len(chunk), -1)
    return out


def _sampling_grid(
    n: int, shape: tuple[int, int], parsed: tuple[tuple[Augmentation, dict[str, float]], ...],
    rng: np.random.Generator,
) -> Grid:
    """Where each output pixel of ``n`` images samples its input, in pixel coordinates."""
    height, width = shape
    base_rows, base_cols = _base_grid(height, width)
    grid = (np.broadcast_to(base_rows, (n, height, width)), np.broadcast_to(base_cols, (n, height, width)))
    # Each warp maps a pixel of its output to the point of its input it samples; the last listed
    # augmentation acts last on the image, so its map is applied first to the output grid.
    for entry, params in parsed:
        grid = entry.warp(grid, rng, params)
    return grid[0] + np.float32((height - 1) / 2), grid[1] + np.float32((width - 1) / 2)


def resample(images: Array, rows: Array, cols: Array) -> Array:
    """Bilinear samples of uint8 ``images`` (n, H, W) at float ``rows``/``cols`` (n, H, W), zero outside,
    scaled to [0, 1] float32."""
    n, height, width = images.shape
    # A zero border (one pixel before, two after: where floor() + 1 may land), so clipped
    # coordinates read zeros and every gather is in bounds.
    padded = np.zeros((n, height + 3, width + 3), np.float32)
    padded[:, 1:height + 1, 1:width + 1] = images
    rows = np.clip(rows, -1, height, dtype=np.float32)
    cols = np.clip(cols, -1, width, dtype=np.float32)
    r0, c0 = np.floor(rows), np.floor(cols)
    stride = width + 3
    index = r0.astype(np.intp)
    index += 1
    index *= stride
    index += c0.astype(np.intp)
    index += (np.arange(n, dtype=np.intp) * ((height + 3) * stride) + 1)[:, None, None]
    flat = padded.reshape(-1)
    top_left, bottom_left = flat[index], flat[index + stride]
    rows -= r0  # now the weights of the lower row and the right column
    cols -= c0
    top = top_left + cols * (flat[index + 1] - top_left)
    bottom = bottom_left + cols * (flat[index + stride + 1] - bottom_left)
    bottom -= top
    bottom *= rows
    top += bottom
    top *= np.float32(1 / 255)
    return top
