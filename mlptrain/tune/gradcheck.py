"""The gradient check: the core's backprop against central differences of its forward pass, in float64.

The net is the config's initial net drawn in float64 (same seed stream as a
run), the samples are the first few of the run's probe batch, and the loss is
the training loss, the trainer's own ``Objective`` with every loss option of
the config (label smoothing; the L2 term when the optimizer puts the decay in
the gradient): the analytic side is its ``loss_and_gradients``, the numeric
side its ``difference_quotient``. Left out, and named by ``left_out``: decoupled
decay, dropout (random masks), max-norm and augmentation, which are no part of
the loss. Every entry of an array with at most ``per_array`` entries is
checked, otherwise a random sample of ``per_array``.
An entry whose perturbation moves some hidden pre-activation across 0 is
skipped: a ReLU's kink there makes the difference quotient meaningless, not
the derivative wrong. The error of an entry is ``|analytic - numeric|`` over
the larger of the two magnitudes, or over ``FLOOR`` times the array's largest
analytic gradient when both are smaller (a gradient that small is rounding noise
in the difference quotient). A norm runs in training mode (batch norm on the
samples' own statistics); its scales and shifts are checked like the rest,
except that batch norm's hidden biases are not: it subtracts each unit's batch
mean, bias included, so their gradient is 0 and the quotient rounding noise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mlptrain.config import Config
from mlptrain.data.loading import Dataset
from mlptrain.errors import InvalidResult
from mlptrain.nn.network import Network, forward
from mlptrain.train.objective import Objective
from mlptrain.train.trainer import Trainer

Array = np.ndarray
TOLERANCE = 1e-5  # PASS when every checked entry's error is below this
FLOOR = 1e-3
EPS = 1e-5


@dataclass
class ArrayCheck:
    """One parameter array (``W0``, ``b0``, …): how many entries were compared and the largest error."""

    name: str
    layer: str  # hidden1, …, logits
    checked: int
    size: int
    skipped: int  # perturbations across a kink
    max_error: float
    grad_max: float  # largest |analytic gradient| of the checked entries

    @property
    def passed(self) -> bool:
        return self.max_error < TOLERANCE


@dataclass
class GradCheck:
    """The loss that was checked, what of training it leaves out, and one ``ArrayCheck`` per parameter array."""

    loss: str  # e.g. "cross-entropy with label smoothing 0.1"
    left_out: list[str]  # this config's settings that change training but are no part of the loss
    arrays: list[ArrayCheck]


@np.errstate(over="ignore", invalid="ignore", divide="ignore")  # a non-finite result is an error below, once
def gradcheck(config: Config, data: Dataset, samples: int = 4, per_array: int = 500, eps: float = EPS
              ) -> GradCheck:
    """Check every parameter array of ``config``'s initial net (in float64) on ``samples`` probe images."""
    trainer = Trainer(dataclasses.replace(config, dtype="float64", dropout=0.0, input_dropout=0.0), data)
    net, objective = trainer.net, trainer.objective
    x, y = (a[:samples] for a in trainer.probe_batch())
    _, grads, _ = objective.loss_and_gradients(net, x, y)
    pick = np.random.default_rng(config.seed)
    checks = []
    for i, (param, grad) in enumerate(zip(net.parameters(), grads)):
        name, layer = _array_name(net, i)
        flat = np.arange(param.size)
        if param.size > per_array:
            flat = np.sort(pick.choice(param.size, per_array, replace=False))
        if _no_effect(net, i):
            flat = flat[:0]
        checks.append(_check_array(net, x, y, objective, i, grad, flat, eps, name, layer))
    return GradCheck(objective.describe(), left_out(config, objective), checks)


def _array_name(net: Network, index: int) -> tuple[str, str]:
    """``parameters()[index]``'s name (``W0``, ``b0``, …, ``scale0``, ``shift0``, …) and layer (``hidden1``…)."""
    n_layers = len(net.weights)
    if index < 2 * n_layers:
        layer = "logits" if index // 2 == n_layers - 1 else f"hidden{index // 2 + 1}"
        return f"{'Wb'[index % 2]}{index // 2}", layer
    hidden = (index - 2 * n_layers) // 2
    return f"{('scale', 'shift')[index % 2]}{hidden}", f"hidden{hidden + 1}"


def _no_effect(net: Network, index: int) -> bool:
    """A hidden bias under batch norm: the batch mean it is subtracted with takes it along."""
    n_layers = len(net.weights)
    return net.norm is not None and net.norm.kind.axis == 0 and index % 2 == 1 and index < 2 * n_layers - 2


def left_out(config: Config, objective: Objective) -> list[str]:
    """``config``'s settings that change training but not its loss, so not the check: each with the reason."""
    out = []
    if config.weight_decay and not objective.l2:
        out.append(f"weight decay {config.weight_decay:g} ({config.optimizer} applies it in its step, "
                   "outside the gradient)")
    for name, rate in (("dropout", config.dropout), ("input dropout", config.input_dropout)):
        if rate:
            out.append(f"{name} {rate:g} (random masks: the check runs without them)")
    if config.max_norm is not None:
        out.append(f"max-norm {config.max_norm:g} (a projection of the weights after each step)")
    if config.augment:
        out.append("augmentation (it changes the inputs, not the loss)")
    if config.norm == "batch" and config.hidden:
        out.append("the hidden biases (batch norm subtracts each unit's batch mean, bias included: "
                   "they do not change the loss)")
    return out


def _logits(net: Network, x: Array) -> tuple[Array, list[Array]]:
    """The logits and the signs of the hidden pre-activations (where the kinks are); a norm in training mode."""
    trace = forward(net, x, train=True)
    return trace.logits, [z > 0 for z in trace.pre]


def _check_array(net: Network, x: Array, y: Array, objective: Objective, index: int, grad: Array, flat: Array,
                 eps: float, name: str, layer: str) -> ArrayCheck:
    param = net.parameters()[index]
    _, signs = _logits(net, x)
    view, gview = param.reshape(-1), grad.reshape(-1)
    analytic, numeric, skipped = [], [], 0
    for j in flat:
        original = view[j]
        view[j] = original + eps
        up, up_signs = _logits(net, x)
        view[j] = original - eps
        down, down_signs = _logits(net, x)
        view[j] = original
        if not all(np.array_equal(s, u) and np.array_equal(s, d) for s, u, d in zip(signs, up_signs, down_signs)):
            skipped += 1
            continue
        analytic.append(gview[j])
        numeric.append(objective.difference_quotient(up, down, y, eps, original if index % 2 == 0 else None))
    a, n = np.array(analytic), np.array(numeric)
    if len(flat):  # an array left out on purpose (a bias batch norm takes along) has nothing to compare
        _check_comparable(name, a, n, eps)
    scale = float(np.abs(a).max()) if len(a) else 0.0
    denominator = np.maximum(np.maximum(np.abs(a), np.abs(n)), FLOOR * scale)
    errors = np.divide(np.abs(a - n), denominator, out=np.zeros_like(a), where=denominator > 0)
    return ArrayCheck(name, layer, len(a), param.size, skipped, float(errors.max()) if len(a) else 0.0, scale)


def _check_comparable(name: str, analytic: Array, numeric: Array, eps: float) -> None:
    """InvalidResult when ``name``'s comparison would mean nothing: a PASS needs finite numbers, compared.

    A NaN error would be masked (``errors`` leaves a NaN denominator at 0) and an array of which nothing
    was compared has no error at all: either would read as agreement.
    """
    if not len(analytic):
        raise InvalidResult(f"no entry of {name} could be compared: a step of {eps:g} moves every one of them across "
                            "a kink of the activation; lower --delta")
    if not (np.isfinite(analytic).all() and np.isfinite(numeric).all()):
        raise InvalidResult(f"the loss or its gradient for {name} is NaN or infinite (the products overflow float64), "
                            "so nothing can be compared; lower the init scale (--init-range, --init-std, --bias-init)")
