"""The init-scale scan: the init check's gain product for U(-r, r) over a log grid of r, per activation.

For every r the net is drawn as training would draw it (the config's init seed
stream) and the probe batch goes forward once; ``diagnostics.gain_products`` is
the product of the layer gains the init check reports, so a value here is the
"total gain" ``fit --verbose`` would print for that init. The healthy band is
where it stays within ``factor`` of 1. Each initializer of the table, and the
config's own init, is measured the same way and judged from its own gain
(``gain_position``). Its equivalent r -- the geometric mean over layers of its
U(-r, r) limit (``sqrt(3)`` times its std), the single r with the same product
of layer scales -- only places it on the plot's r axis: the gain of a ReLU net
with zero biases depends on that product (up to the draw), a saturating or
smooth unit's does not, so the r band cannot judge an initializer.

With a norm (``config.norm``) the nets are measured with it, through the same
forward pass, batch norm in training mode: what the init check and the first
training step see (inference mode would use the fresh running statistics, mean
0 and variance 1, and normalise nothing). A norm rescales each hidden layer
whatever r is, so the product of layer gains no longer says whether the signal
survives; a normalised net is judged by ``normalised_gain`` instead, and the
same activations are scanned without the norm too (``Scan.plain``) to show
how the bands move.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlptrain.config import Config
from mlptrain.data.loading import Dataset
from mlptrain.nn.activations import get_activation
from mlptrain.nn.initializers import INITIALIZERS, describe_init, get_initializer
from mlptrain.nn.network import Network, forward, init_network
from mlptrain.nn.norms import NONE
from mlptrain.threads import worker_pool
from mlptrain.train.diagnostics import gain_products, signal
from mlptrain.train.trainer import Trainer, initial_network, seed_streams

Array = np.ndarray


@dataclass
class Curve:
    """One activation: the gain product at each grid r, the healthy band(s), and each initializer's point."""

    activation: str
    gains: list[float]
    bands: list[tuple[float, float]]  # (low r, high r), interpolated on the log-log curve
    inits: dict[str, float] = field(default_factory=dict)  # initializer name -> gain product


@dataclass
class Scan:
    sizes: list[int]
    radii: list[float]
    factor: float
    curves: list[Curve]
    init_radii: dict[str, float]  # initializer name -> equivalent r
    yours: str  # the config's own init, e.g. "uniform r=0.01" or "he-normal"
    yours_r: float  # its equivalent r
    yours_gain: dict[str, float]  # activation -> gain product of the config's own initial net
    norm: str = NONE  # the config's norm: the curves above are measured with it
    plain: list[Curve] = field(default_factory=list)  # with a norm: the same activations without it


@dataclass
class Placed:
    """One row of an activation's table: an init, the gain measured for it, that gain's position, its equivalent r."""

    name: str  # an initializer of the table, or "yours" (the config's own init, ``Scan.yours``)
    gain: float
    position: str  # inside, below or above: gain_position(gain, factor)
    r: float  # equivalent r: where the plot draws it, not what judges it


def placed(scan: Scan, curve: Curve) -> list[Placed]:
    """The table's initializers, then the config's own init, each judged from the gain measured for it."""
    rows = [(name, gain, scan.init_radii[name]) for name, gain in curve.inits.items()]
    rows.append(("yours", scan.yours_gain[curve.activation], scan.yours_r))
    return [Placed(name, gain, gain_position(gain, scan.factor), r) for name, gain, r in rows]


def log_grid(r_min: float, r_max: float, per_decade: int) -> list[float]:
    """``per_decade`` points a decade from ``r_min`` to ``r_max`` (both included)."""
    n = max(2, round(math.log10(r_max / r_min) * per_decade) + 1)
    return [float(r) for r in np.geomspace(r_min, r_max, n)]


def equivalent_r(sizes: list[int], init: str, init_range: float | None = None, init_std: float | None = None
                 ) -> float:
    """The geometric mean over layers of the initializer's U(-r, r) limit (``sqrt(3)`` std)."""
    scheme = get_initializer(init)
    stds = [scheme.std(i, o, init_range, init_std) for i, o in zip(sizes[:-1], sizes[1:])]
    return math.sqrt(3.0) * math.exp(sum(math.log(s) for s in stds) / len(stds))


def scan_init(config: Config, data: Dataset, activations: list[str], factor: float = 2.0,
              radii: list[float] | None = None, workers: int = 1) -> Scan:
    """The gain product over ``radii`` (default 1e-4..10, 4 a decade) for each activation and initializer.

    ``workers`` threads take the grid points in turn (call it inside ``blas_threads(1)``): a point's
    forward passes are half elementwise work, which one stream on a 2-thread BLAS does on one core.
    Every point is computed alone, so the numbers do not depend on ``workers``. With a norm the
    curves are the normalised nets' (``normalised_gain``) and ``plain`` the same nets without it.
    """
    radii = radii or log_grid(1e-4, 10.0, 4)
    trainer = Trainer(config, data)
    x, _ = trainer.probe_batch()
    sizes = trainer.net.sizes
    norm = config.norm if len(sizes) > 2 else NONE  # a net without hidden layers has nothing to normalise
    names = [get_activation(a).name for a in activations]
    tables = [n for n, scheme in INITIALIZERS.items() if scheme.parameter is None]
    with worker_pool(workers, "mlptrain-scan") as pool:
        curves = _curves(config, sizes, names, tables, radii, factor, x, pool, norm)
        plain = _curves(config, sizes, names, tables, radii, factor, x, pool, NONE) if norm != NONE else []
    own = initial_network(config, data.n_inputs, data.n_classes)
    return Scan(
        sizes, radii, factor, curves,
        {n: equivalent_r(sizes, n) for n in tables},
        describe_init(config.init, config.init_range, config.init_std),
        equivalent_r(sizes, config.init, config.init_range, config.init_std),
        _gains(own, names, x), norm, plain,
    )


def _curves(config: Config, sizes: list[int], names: list[str], tables: list[str], radii: list[float],
            factor: float, x: Array, pool: Any, norm: str) -> list[Curve]:
    """Each activation's curve over ``radii`` and its initializers' gains, the nets drawn with ``norm``."""
    # One net drawn per grid point and initializer, shared by the activations: the weights do not depend on it.
    draws = [("uniform", r) for r in radii] + [(n, None) for n in tables]
    points = list(pool.map(lambda d: _gains(_draw(config, sizes, *d, norm=norm), names, x), draws))
    grid, inits = points[:len(radii)], dict(zip(tables, points[len(radii):]))
    curves = []
    for name in names:
        gains = [point[name] for point in grid]
        curves.append(Curve(name, gains, healthy_bands(radii, gains, factor), {n: inits[n][name] for n in tables}))
    return curves


def _draw(config: Config, sizes: list[int], init: str, r: float | None = None, norm: str = NONE) -> Network:
    """The net ``init`` draws from the config's init stream, with ``norm`` (the activation is set later)."""
    rng = np.random.default_rng(seed_streams(config.seed)[0])
    return init_network(sizes, config.activation, get_initializer(init), rng, init_range=r,
                        bias_init=config.bias_init, dtype=np.dtype(config.dtype), norm=norm,
                        norm_eps=config.norm_eps, norm_momentum=config.norm_momentum)


def _gains(net: Network, activations: list[str], x: Array) -> dict[str, float]:
    """Each activation's gain (``normalised_gain`` with a norm); inf where the signal overflows (NaN spread)."""
    nets = [_with(net, name) for name in activations]
    gains = gain_products(nets, x) if net.norm is None else [normalised_gain(n, x) for n in nets]
    return {name: math.inf if math.isnan(gain) else gain for name, gain in zip(activations, gains)}


def normalised_gain(net: Network, x: Array) -> float:
    """How a normalised net passes ``x`` ``(n, inputs)``: the spread its last norm keeps, times the output
    layer's gain where it exceeds 1.

    The spread is the RMS of the last norm's normalised values, ``sqrt(mean(var / (var + eps)))``
    over the norm's own axis (each unit over the batch for batch norm, each sample over its units for
    layer norm): 1 while the statistics dominate eps, whatever r is, and falling when a scale so small
    that the variance is below eps leaves the norm nothing to rescale (the signal then vanishes again,
    layer after layer). The output layer has no norm after it: its gain follows r, and only its growth
    counts, as in the init check (small logits start near uniform and their own gradient is not small;
    large ones saturate the softmax). Batch norm uses the batch's statistics without updating its
    running ones.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        trace = forward(net, x, train=True)
        xhat, _ = trace.norms[-1]
        kept = float(np.sqrt(np.mean(np.square(xhat, dtype=np.float64))))
        last = signal(trace.post[-1])
        output = signal(trace.logits) / last if last > 0 else 0.0
    return kept * max(output, 1.0)


def _with(net: Network, activation: str) -> Network:
    """The same weights with another activation (nothing is copied)."""
    return dataclasses.replace(net, activation=get_activation(activation))


def healthy_bands(radii: list[float], gains: list[float], factor: float) -> list[tuple[float, float]]:
    """The r intervals where ``1/factor <= gain <= factor``, the curve taken log-log linear between grid points."""
    bound = math.log(factor)
    logs = [math.log(g) if 0 < g < math.inf else -math.inf if g <= 0 else math.inf for g in gains]
    pieces = []
    for i in range(len(radii) - 1):
        t = _inside(logs[i], logs[i + 1], bound)
        if t is not None:
            lo, hi = (math.log(radii[i]) + u * (math.log(radii[i + 1]) - math.log(radii[i])) for u in t)
            pieces.append((math.exp(lo), math.exp(hi)))
    bands: list[tuple[float, float]] = []
    for low, high in pieces:  # consecutive pieces that touch are one band
        if bands and math.isclose(bands[-1][1], low):
            bands[-1] = (bands[-1][0], high)
        else:
            bands.append((low, high))
    return bands


def _inside(a: float, b: float, bound: float) -> tuple[float, float] | None:
    """The part ``(t0, t1)`` of [0, 1] where ``a + t (b - a)`` lies in [-bound, bound]; None: nowhere."""
    if not (math.isfinite(a) and math.isfinite(b)):  # a gain of 0 or inf: only the finite end can be inside
        ends = [t for t, v in ((0.0, a), (1.0, b)) if abs(v) <= bound]
        return (ends[0], ends[0]) if ends else None
    if a == b:
        return (0.0, 1.0) if abs(a) <= bound else None
    t1, t2 = (-bound - a) / (b - a), (bound - a) / (b - a)
    low, high = max(0.0, min(t1, t2)), min(1.0, max(t1, t2))
    return (low, high) if low <= high else None


def band_position(bands: list[tuple[float, float]], r: float) -> str:
    """``inside`` the band, or how far below/above it the r of a U(-r, r) init lies (others: ``gain_position``)."""
    if any(low <= r <= high for low, high in bands):
        return "inside"
    if not bands:
        return "no band on the grid"
    low, high = bands[0][0], bands[-1][1]
    return f"{low / r:.3g}x below the band" if r < low else f"{r / high:.3g}x above the band"


def gain_position(gain: float, factor: float) -> str:
    """``inside`` when ``1/factor <= gain <= factor``; ``below`` (the signal vanishes) or ``above`` (it grows)."""
    if gain < 1 / factor:
        return "below"
    if gain <= factor:
        return "inside"
    return "above"  # NaN too: a gain is NaN only when the signal overflowed (inf / inf), as healthy_bands takes it
