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
from dataclasses import dataclass

import numpy as np

from mlptrain.nn.initializers import get_initializer
from mlptrain.nn.network import Network, backward, forward, init_network, softmax_cross_entropy
from mlptrain.train.advice import Context, Diagnosis, HealthWarning, explain, recommended_init
from mlptrain.train.causes import diagnose_init

Array = np.ndarray

# Thresholds, and why they sit where they do (see docs/diagnostics.md, the warning table).
SIGNAL_FACTOR = 10.0  # across the whole net: a healthy He/Glorot net stays within ~2x of its input's signal
DEAD_SHARE = 0.5  # a ReLU layer with most units never active cannot recover them by gradient descent
SATURATED_SHARE = 0.5  # half the logistic/tanh outputs pinned near their bounds: their slope is ~0
SATURATION_SLOPE = 0.05  # "saturated" = local slope below 5% of the unit's peak slope
LOGIT_SPREAD = 1e-3  # logits that vary less than this across samples ignore the input
COLLAPSED_SHARE = 0.9  # one class predicted for 90% of samples (no data set here has a class that large)
GRADIENT_RATIO = 1e-3  # first layer's weight-gradient RMS this far below the last layer's
NOT_LEARNING_SHARE = 0.85  # mean training loss of the check epoch above 85% of log(classes)
NOT_LEARNING_EPOCH = 2
SHRINK_FACTOR = 2.0  # a layer's weight RMS this far below its init RMS, while the loss is still near log C


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


# Events happen once, and the data check's findings hold for the whole run; the other codes describe a state
# that later epochs may clear.
EVENT_CODES = frozenset({"not-learning", "diverged", "rising-loss", "inverted-inputs", "faint-inputs",
                         "constant-inputs"})


def signal(a: Array) -> float:
    """The signal of ``a`` ``(n, units)``: the RMS over units of each unit's std across the samples."""
    # var in float64 straight from the float32 array: the same sums as converting first (the conversion
    # is exact), without a float64 copy of the whole array.
    return float(np.sqrt(np.mean(a.var(axis=0, dtype=np.float64))))


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
    trace = forward(net, x, train=True)  # batch norm: the statistics a training step sees
    _, grad_logits = softmax_cross_entropy(trace.logits, labels)
    grads = backward(net, trace, grad_logits)
    outputs = [*zip(trace.pre, trace.post), (trace.logits, trace.logits)]
    rows, previous = [], signal(x)
    for i, (z, a) in enumerate(outputs):
        out = signal(a)
        last = i == len(outputs) - 1
        slope = 1.0 if last else _peak_slope(net, z.dtype)
        rows.append(LayerHealth(
            layer="logits" if last else f"hidden{i + 1}",
            pre_std=signal(z), signal=out, gain=out / previous / slope if previous > 0 else 0.0,
            dead=0.0 if last else _dead_share(net, z),
            saturated=0.0 if last else _slope_share(net, z, a),
            act_mean=float(a.mean()), act_std=float(a.std()),
            weight_rms=float(np.sqrt(np.mean(np.square(net.weights[i], dtype=np.float64)))),
            grad_rms=float(np.sqrt(np.mean(np.square(grads[2 * i], dtype=np.float64)))),
        ))
        previous = out
    return rows, trace.logits


def total_gain(rows: list[LayerHealth]) -> float:
    return math.prod(r.gain for r in rows)


def context_for(net: Network, weight_decay: float = 0.0, lr: float | None = None, bias_init: float = 0.0
                ) -> Context:
    """The advice context of ``net``: its activation and layer sizes, and the run's decay, lr and bias init."""
    return Context(net.activation.name, tuple(net.sizes), weight_decay, lr, bias_init)


def _found(code: str, epoch: int, layer: str | None, seen: str) -> HealthWarning:
    """A warning saying what was measured; ``advice.explain`` adds its cause and advice."""
    return HealthWarning(code, epoch, layer, seen)


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
    if net.norm is not None:
        # Each norm resets its layer's scale: only the output layer keeps the init's, and a small one there is
        # harmless (the logits start near uniform; its own gradient is not small), a large one saturates the softmax.
        total = max(rows[-1].gain, 1.0) if epoch == 0 else 1.0
    growth_limit = factor if epoch == 0 else factor**2
    healthy = f"healthy: within {factor:g}x" if epoch == 0 else f"healthy: within {1 / factor:g}x to {factor**2:g}x"
    if total < 1.0 / factor:
        return [_found("vanishing-signal", epoch, None,
                       f"the signal shrinks {1 / max(total, 1e-30):.3g}x from input to {_end(epoch)} "
                       f"({healthy}; layer gains {_gains(rows)})")]
    if total > growth_limit and net.activation.family != "saturating":
        # Bounded units cannot explode; their too-large weights show up as saturated-units instead.
        return [_found("exploding-signal", epoch, None,
                       f"the signal grows {total:.3g}x from input to {_end(epoch)} "
                       f"({healthy}; layer gains {_gains(rows)})")]
    return []


def _end(epoch: int) -> str:
    return "logits" if epoch == 0 else "the last hidden layer"


def _gains(rows: list[LayerHealth]) -> str:
    return ", ".join(f"{r.gain:.2g}" for r in rows)


def unit_warnings(net: Network, rows: list[LayerHealth], epoch: int) -> list[HealthWarning]:
    """dead-units / saturated-units, layer by layer."""
    found = []
    for row in rows[:-1]:
        if row.dead > DEAD_SHARE:
            found.append(_found("dead-units", epoch, row.layer,
                                f"{row.dead:.0%} of {row.layer}'s units never fire on the probe batch "
                                f"(warned above {DEAD_SHARE:.0%})"))
        if row.saturated > SATURATED_SHARE:
            found.append(_found("saturated-units", epoch, row.layer,
                                f"{row.saturated:.0%} of {row.layer}'s outputs are saturated (slope under "
                                f"{SATURATION_SLOPE:.0%} of its peak; warned above {SATURATED_SHARE:.0%})"))
    return found


def output_warnings(logits: Array, epoch: int) -> list[HealthWarning]:
    """input-ignored / collapsed-predictions, from logits on held-out or probe samples."""
    found = []
    spread = signal(logits)
    predicted = np.bincount(logits.argmax(axis=1), minlength=logits.shape[1]) / len(logits)
    if spread < LOGIT_SPREAD:
        found.append(_found("input-ignored", epoch, None,
                            f"the logits vary by only {spread:.2g} across samples (warned below "
                            f"{LOGIT_SPREAD:g}): the output no longer depends on the input"))
    if predicted.max() >= COLLAPSED_SHARE:
        found.append(_found("collapsed-predictions", epoch, None,
                            f"class {int(predicted.argmax())} is predicted for {predicted.max():.0%} of "
                            f"the probe images (warned from {COLLAPSED_SHARE:.0%})"))
    return found


def gradient_warnings(rows: list[LayerHealth], epoch: int) -> list[HealthWarning]:
    """vanishing-gradients: the first layer's weight gradients far below the last layer's."""
    first, last = rows[0].grad_rms, rows[-1].grad_rms
    if len(rows) > 1 and last > 0 and first / last < GRADIENT_RATIO:
        return [_found("vanishing-gradients", epoch, rows[0].layer,
                       f"{rows[0].layer}'s weight gradients are {last / max(first, 1e-30):.3g}x smaller "
                       f"than the output layer's (warned from {1 / GRADIENT_RATIO:g}x): the first layers "
                       "barely learn")]
    return []


def learning_check_epoch(epochs: int) -> int:
    """The epoch after which an ``epochs``-epoch run checks not-learning: a shorter run checks at its end."""
    return min(NOT_LEARNING_EPOCH, epochs)


def raised_in_a_run_of(warning: dict, epochs: int) -> bool:
    """Whether an ``epochs``-epoch run could have recorded ``warning`` (a dict): a run trained on for more
    epochs drops the not-learning its shorter self checked at its end, and checks at its own check epoch."""
    return warning["code"] != "not-learning" or warning["epoch"] == learning_check_epoch(epochs)


def learning_warnings(loss: float, n_classes: int, epoch: int, epochs: int) -> list[HealthWarning]:
    """not-learning: the loss still near log(classes) after the check epoch."""
    chance = math.log(n_classes)
    threshold = NOT_LEARNING_SHARE * chance
    if epoch == learning_check_epoch(epochs) and loss > threshold:
        return [_found("not-learning", epoch, None,
                       f"after {epoch} epoch{'s' if epoch != 1 else ''} the training loss is {loss:.3f}, "
                       f"above {threshold:.3f} ({NOT_LEARNING_SHARE:g} x log({n_classes}); log({n_classes})"
                       f" = {chance:.3f} is the loss of a constant guess)")]
    return []


def weight_warnings(rows: list[LayerHealth], init_rows: list[dict] | None, loss: float, n_classes: int,
                    epoch: int) -> list[HealthWarning]:
    """shrinking-weights: a layer's weight RMS fallen SHRINK_FACTOR below its init while the loss stays near log C.

    The seed's own symptom: with nothing to learn from (the signal vanished)
    the gradients are ~0, and weight decay alone walks the weights to zero.
    """
    if not init_rows or loss <= NOT_LEARNING_SHARE * math.log(n_classes):
        return []
    ratios = [init["weight_rms"] / row.weight_rms if row.weight_rms else math.inf for row, init in zip(rows, init_rows)]
    shrunk = [i for i, ratio in enumerate(ratios) if ratio >= SHRINK_FACTOR]
    if not shrunk:
        return []
    first = shrunk[0]
    return [_found("shrinking-weights", epoch, None,
                   f"the weights shrink towards zero while the loss stays near log({n_classes}): their RMS "
                   f"fell {min(ratios[i] for i in shrunk):.2g}x or more in {len(shrunk)} of {len(rows)} layers "
                   f"({rows[first].layer}: {init_rows[first]['weight_rms']:.3g} at init, "
                   f"{rows[first].weight_rms:.3g} now; warned from {SHRINK_FACTOR:g}x)")]


def init_findings(net: Network, rows: list[LayerHealth], factor: float = SIGNAL_FACTOR) -> list[HealthWarning]:
    """What the init check finds wrong in ``rows`` (the fresh net's health), without causes."""
    return signal_warnings(net, rows, 0, factor) + unit_warnings(net, rows, 0) + gradient_warnings(rows, 0)


def recommended_check(net: Network, x: Array, labels: Array, factor: float = SIGNAL_FACTOR
                      ) -> tuple[str, float, list[str]]:
    """The init check at the family's recommended init, for ``net``'s sizes: the init's name, its total
    gain on ``x`` and the codes it raises. Fixed draws (seed 0): the answer is about the sizes, not a seed."""
    name = recommended_init(net.activation.family)
    fresh = init_network(list(net.sizes), net.activation.name, get_initializer(name), np.random.default_rng(0),
                         dtype=net.dtype)
    rows, _ = layer_health(fresh, x, labels)
    return name, total_gain(rows), sorted({w.code for w in init_findings(fresh, rows, factor)})


def check_init(net: Network, x: Array, labels: Array, factor: float = SIGNAL_FACTOR, ctx: Context | None = None,
               inputs: Diagnosis | None = None) -> tuple[list[LayerHealth], list[HealthWarning]]:
    """The init check: per-layer health of the fresh net and what is already wrong with it, with its cause.

    ``inputs`` is the data check's finding, if it had one (the cause when the
    recommended init fails as well). The recommended init is checked only
    when this one fails: one more forward and backward pass of the probe.
    """
    rows, _ = layer_health(net, x, labels)
    found = init_findings(net, rows, factor)
    if not found:
        return rows, []
    recommended = recommended_check(net, x, labels, factor)
    diagnosis = diagnose_init([w.code for w in found], total_gain(rows), recommended, len(rows) - 1, inputs)
    ctx = ctx or context_for(net)
    return rows, [explain(w, diagnosis, ctx) for w in found]


def check_epoch(net: Network, x: Array, labels: Array, epoch: int, train_loss: float, epochs: int,
                factor: float = SIGNAL_FACTOR, init_rows: list[dict] | None = None
                ) -> tuple[list[LayerHealth], list[HealthWarning]]:
    """Per-layer health after an epoch, and every warning that applies now (without causes: those need the
    run's history, see ``causes.diagnose_epoch``).

    ``init_rows`` are the init check's rows (as dicts), the reference for shrinking weights.
    """
    rows, logits = layer_health(net, x, labels)
    n_classes = net.sizes[-1]
    warnings = (
        signal_warnings(net, rows, epoch, factor) + unit_warnings(net, rows, epoch) + output_warnings(logits, epoch)
        + gradient_warnings(rows, epoch) + learning_warnings(train_loss, n_classes, epoch, epochs)
        + weight_warnings(rows, init_rows, train_loss, n_classes, epoch)
    )
    return rows, warnings


def gain_products(nets: list[Network], x: Array) -> list[float]:
    """``total_gain`` of ``layer_health``'s rows on ``x`` ``(n, inputs)`` for each net, forward passes alone.

    The same signals, slopes and product as the init check, without its backward
    pass and per-unit statistics, and with the input's signal computed once:
    the init-scale scan runs it for every grid point and activation. Nets that
    share their first layer's arrays (one draw, several activations) share its
    product too -- three quarters of a 784-256-256-10 net's work -- and then run
    the rest of the net through the same core: the numbers are the ones a
    forward pass of each whole net gives.
    """
    first = signal(x)
    shared: dict[tuple[int, int], Array] = {}
    gains = []
    for net in nets:
        key = (id(net.weights[0]), id(net.biases[0]))
        if key not in shared and len(net.weights) > 1:
            shared[key] = forward(Network(net.weights[:1], net.biases[:1], net.activation), x).logits
        gains.append(_gain_product(net, x, first, shared.get(key)))
    return gains


def _gain_product(net: Network, x: Array, first: float, first_pre: Array | None) -> float:
    """The gain product of ``net`` on ``x``; ``first_pre``: its first layer's ``x W + b``, when known."""
    with np.errstate(over="ignore", invalid="ignore"):
        if first_pre is None:
            trace = forward(net, x)
            posts, logits = trace.post, trace.logits
        else:
            hidden = net.activation.function(first_pre)  # a new array: the next net reuses first_pre
            rest = forward(Network(net.weights[1:], net.biases[1:], net.activation), hidden)
            posts, logits = [hidden, *rest.post], rest.logits
        signals = [first, *(signal(a) for a in posts), signal(logits)]
    slope = _peak_slope(net, net.dtype)
    gains = [
        after / before / (1.0 if i == len(signals) - 2 else slope) if before > 0 else 0.0
        for i, (before, after) in enumerate(zip(signals[:-1], signals[1:]))
    ]
    return math.prod(gains)
