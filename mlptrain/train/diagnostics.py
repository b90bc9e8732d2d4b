"""Training-health diagnostics: why isn't my network learning?

Everything here runs a fixed probe batch of real training images through the
shared core (``forward``/``backward``) and turns what it sees into per-layer
statistics and coded warnings. Nothing prints: the CLI shows the warnings,
the run directory stores them.

The signal of a layer is how much its output varies *with the input*: the RMS
over units of each unit's standard deviation across the probe samples. A
constant offset (a logistic unit sitting at 0.5) carries no information, so
it does not count. The gain of a layer is its signal over its input's signal,
divided by the activation's slope at 0: a logistic unit passes at most a
quarter of its input's variation even at its best init, and Glorot's init is
built for slope-1 units, so the gain is measured relative to the unit's own
linear regime. The total gain is the product of the layers' gains.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mlptrain.nn.network import Network, backward, forward, softmax_cross_entropy

Array = np.ndarray

# Thresholds, and why they sit where they do (see the README's diagnostics section).
SIGNAL_FACTOR = 10.0  # across the whole net: a healthy He/Glorot net stays within ~2x of its input's signal
DEAD_SHARE = 0.5  # a ReLU layer with most units never active cannot recover them by gradient descent
SATURATED_SHARE = 0.5  # half the logistic/tanh outputs pinned near their bounds: their slope is ~0
SATURATION_SLOPE = 0.05  # "saturated" = local slope below 5% of the unit's peak slope
LOGIT_SPREAD = 1e-3  # logits that vary less than this across samples ignore the input
COLLAPSED_SHARE = 0.9  # one class predicted for 90% of samples (no data set here has a class that large)
GRADIENT_RATIO = 1e-3  # first layer's weight-gradient RMS this far below the last layer's
NOT_LEARNING_SHARE = 0.85  # mean training loss of the check epoch above 85% of log(classes)
NOT_LEARNING_EPOCH = 2


@dataclass
class LayerHealth:
    """One hidden layer (or ``logits``) on the probe batch."""

    layer: str
    pre_std: float  # RMS over units of the pre-activation's std across samples
    signal: float  # same for the activation (the output)
    gain: float  # signal / the layer input's signal
    dead: float  # share of units never active on the probe (ReLU family; 0 otherwise)
    saturated: float  # share of outputs where the unit's slope is ~0 (logistic/tanh; 0 otherwise)
    act_mean: float
    act_std: float
    weight_rms: float
    grad_rms: float  # RMS of the weight gradient on the probe batch


# Events happen once; the other codes describe a state that later epochs may clear.
EVENT_CODES = frozenset({"not-learning", "diverged"})


@dataclass
class HealthWarning:
    """A coded warning: what is wrong, where, and what to try."""

    code: str
    epoch: int  # 0: the init check before training
    layer: str | None
    message: str
    cleared: int | None = None  # the first later epoch at which the condition no longer held

    def as_dict(self) -> dict:
        return asdict(self)


def _signal(a: Array) -> float:
    return float(np.sqrt(np.mean(a.astype(np.float64).var(axis=0))))


def _peak_slope(net: Network, dtype: np.dtype) -> float:
    """A saturating activation's slope at 0, its steepest (1/4 for logistic, 1 for tanh); 1 otherwise."""
    if net.activation.family != "saturating":
        return 1.0
    zero = np.zeros(1, dtype)
    return float(net.activation.derivative(zero, net.activation.function(zero))[0])


def _slope_share(net: Network, z: Array, a: Array) -> float:
    """Share of outputs whose local slope is under SATURATION_SLOPE of the activation's peak slope."""
    if net.activation.family != "saturating":
        return 0.0
    slope = net.activation.derivative(z, a)
    return float(np.mean(slope < SATURATION_SLOPE * _peak_slope(net, z.dtype)))


def _dead_share(net: Network, z: Array) -> float:
    if not net.activation.can_die:
        return 0.0  # softplus, elu, logistic…: a slope everywhere, so no unit can die
    return float(np.mean((z > 0).sum(axis=0) == 0))


def layer_health(net: Network, x: Array, labels: Array) -> tuple[list[LayerHealth], Array]:
    """Per-layer health of ``net`` on the probe batch ``x`` (one entry per hidden layer, then the
    logits), and the probe's logits."""
    with np.errstate(over="ignore", invalid="ignore"):  # a net on its way to diverging is still described
        return _layer_health(net, x, labels)


def _layer_health(net: Network, x: Array, labels: Array) -> tuple[list[LayerHealth], Array]:
    trace = forward(net, x)
    _, grad_logits = softmax_cross_entropy(trace.logits, labels)
    grads = backward(net, trace, grad_logits)
    outputs = [*zip(trace.pre, trace.post), (trace.logits, trace.logits)]
    rows, previous = [], _signal(x)
    for i, (z, a) in enumerate(outputs):
        signal = _signal(a)
        last = i == len(outputs) - 1
        slope = 1.0 if last else _peak_slope(net, z.dtype)
        rows.append(LayerHealth(
            layer="logits" if last else f"hidden{i + 1}",
            pre_std=_signal(z), signal=signal, gain=signal / previous / slope if previous > 0 else 0.0,
            dead=0.0 if last else _dead_share(net, z),
            saturated=0.0 if last else _slope_share(net, z, a),
            act_mean=float(a.mean()), act_std=float(a.std()),
            weight_rms=float(np.sqrt(np.mean(np.square(net.weights[i], dtype=np.float64)))),
            grad_rms=float(np.sqrt(np.mean(np.square(grads[2 * i], dtype=np.float64)))),
        ))
        previous = signal
    return rows, trace.logits


def suggested_range(fan_in: int, family: str) -> float:
    """r of U(-r, r) that keeps the variance: He for the ReLU family, LeCun otherwise."""
    return math.sqrt((6.0 if family == "relu" else 3.0) / fan_in)


def total_gain(rows: list[LayerHealth]) -> float:
    return math.prod(r.gain for r in rows)


def signal_warnings(net: Network, rows: list[LayerHealth], epoch: int,
                    factor: float = SIGNAL_FACTOR) -> list[HealthWarning]:
    """vanishing-signal / exploding-signal: the product of the layer gains.

    At init (epoch 0) from input to logits, against ``factor``. During training
    the hidden layers only, since a trained output layer is meant to amplify
    (confident logits), and growth only beyond ``factor**2``: trained hidden
    layers legitimately amplify the features they use (a healthy softplus net
    reaches ~10x), while a signal that really explodes ends in ``diverged``.
    """
    total = total_gain(rows if epoch == 0 else rows[:-1])
    growth_limit = factor if epoch == 0 else factor**2
    fix = _init_advice(net)
    if total < 1.0 / factor:
        return [HealthWarning("vanishing-signal", epoch, None,
                        f"the signal shrinks {1 / max(total, 1e-30):.3g}x from input to {_end(epoch)} "
                        f"(layer gains {_gains(rows)}); {fix}")]
    if total > growth_limit and net.activation.family != "saturating":
        # Bounded units cannot explode; their too-large weights show up as saturated-units instead.
        return [HealthWarning("exploding-signal", epoch, None,
                        f"the signal grows {total:.3g}x from input to {_end(epoch)} (layer gains {_gains(rows)}); "
                        f"{fix}")]
    return []


def _end(epoch: int) -> str:
    return "logits" if epoch == 0 else "the last hidden layer"


def _gains(rows: list[LayerHealth]) -> str:
    return ", ".join(f"{r.gain:.2g}" for r in rows)


def _init_advice(net: Network) -> str:
    family = net.activation.family
    scheme = "he-uniform" if family == "relu" else "glorot-uniform"
    r = suggested_range(net.sizes[0], family)
    return f"use --init {scheme}, or an --init-range near {r:.2g} for {net.sizes[0]} inputs"


def unit_warnings(net: Network, rows: list[LayerHealth], epoch: int) -> list[HealthWarning]:
    """dead-units / saturated-units, layer by layer."""
    found = []
    for row in rows[:-1]:
        if row.dead > DEAD_SHARE:
            found.append(HealthWarning("dead-units", epoch, row.layer,
                                 f"{row.dead:.0%} of {row.layer}'s units never fire on the probe batch; "
                                 "lower --lr, use --activation leaky-relu or elu, or check --bias-init"))
        if row.saturated > SATURATED_SHARE:
            found.append(HealthWarning("saturated-units", epoch, row.layer,
                                 f"{row.saturated:.0%} of {row.layer}'s outputs are saturated (slope ~0); "
                                 f"use a smaller init ({_init_advice(net)}) or --activation relu"))
    return found


def output_warnings(logits: Array, epoch: int) -> list[HealthWarning]:
    """input-ignored / collapsed-predictions, from logits on held-out or probe samples."""
    found = []
    spread = _signal(logits)
    predicted = np.bincount(logits.argmax(axis=1), minlength=logits.shape[1]) / len(logits)
    if spread < LOGIT_SPREAD:
        found.append(HealthWarning("input-ignored", epoch, None,
                             f"the logits vary by only {spread:.2g} across samples: the output no longer "
                             "depends on the input and the net predicts the class frequencies; usually the "
                             "initial weights are too small for the depth (try --init he-uniform), or the "
                             "units died (see dead-units)"))
    if predicted.max() >= COLLAPSED_SHARE:
        found.append(HealthWarning("collapsed-predictions", epoch, None,
                             f"class {int(predicted.argmax())} is predicted for {predicted.max():.0%} of samples; "
                             "check the init scale and --lr"))
    return found


def gradient_warnings(rows: list[LayerHealth], epoch: int) -> list[HealthWarning]:
    """vanishing-gradients: the first layer's weight gradients far below the last layer's."""
    first, last = rows[0].grad_rms, rows[-1].grad_rms
    if len(rows) > 1 and last > 0 and first / last < GRADIENT_RATIO:
        return [HealthWarning("vanishing-gradients", epoch, rows[0].layer,
                        f"{rows[0].layer}'s weight gradients are {last / max(first, 1e-30):.3g}x smaller than "
                        "the output layer's: the first layers barely learn; use a larger init scale "
                        "(--init he-uniform) or fewer layers")]
    return []


def learning_warnings(loss: float, n_classes: int, epoch: int, epochs: int) -> list[HealthWarning]:
    """not-learning: the loss still near log(classes) after the check epoch."""
    chance = math.log(n_classes)
    if epoch == min(NOT_LEARNING_EPOCH, epochs) and loss > NOT_LEARNING_SHARE * chance:
        return [HealthWarning("not-learning", epoch, None,
                        f"after {epoch} epoch(s) the training loss is {loss:.3f}, not clearly below "
                        f"log({n_classes}) = {chance:.3f}, the loss of a constant guess; check the init scale "
                        "(see the other warnings) and --lr")]
    return []


def check_init(net: Network, x: Array, labels: Array, factor: float = SIGNAL_FACTOR
               ) -> tuple[list[LayerHealth], list[HealthWarning]]:
    """The init check: per-layer health of the fresh net and what is already wrong with it."""
    rows, _ = layer_health(net, x, labels)
    warnings = signal_warnings(net, rows, 0, factor) + unit_warnings(net, rows, 0) + gradient_warnings(rows, 0)
    return rows, warnings


def check_epoch(net: Network, x: Array, labels: Array, epoch: int, train_loss: float, epochs: int,
                factor: float = SIGNAL_FACTOR) -> tuple[list[LayerHealth], list[HealthWarning]]:
    """Per-layer health after an epoch, and every warning that applies now."""
    rows, logits = layer_health(net, x, labels)
    warnings = (
        signal_warnings(net, rows, epoch, factor) + unit_warnings(net, rows, epoch)
        + output_warnings(logits, epoch) + gradient_warnings(rows, epoch)
        + learning_warnings(train_loss, net.sizes[-1], epoch, epochs)
    )
    return rows, warnings



def gain_products(nets: list[Network], x: Array) -> list[float]:
    """``total_gain`` of ``layer_health``'s rows on ``x`` ``(n, inputs)`` for each net, forward passes alone.

    The same signals, slopes and product as the init check, without its backward
    pass and per-unit statistics, and with the input's signal computed once:
    the init-scale scan runs it for every grid point and activation.
    """
    first = _signal(x)
    return [_gain_product(net, x, first) for net in nets]


def _gain_product(net: Network, x: Array, first: float) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        trace = forward(net, x)
        signals = [first, *(_signal(a) for a in trace.post), _signal(trace.logits)]
    slope = _peak_slope(net, net.dtype)
    gains = [
        after / before / (1.0 if i == len(signals) - 2 else slope) if before > 0 else 0.0
        for i, (before, after) in enumerate(zip(signals[:-1], signals[1:]))
    ]
    return math.prod(gains)
