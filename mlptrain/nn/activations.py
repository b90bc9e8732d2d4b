"""The table of hidden-unit activations: name -> (function, derivative, ONNX form).

Every function maps a pre-activation array ``z`` to ``a = f(z)``, written
into ``out`` when it is given (the training loop passes a buffer it reuses
every step, so the forward pass allocates nothing; ``out`` may also be ``z``
itself, in place); every derivative maps
``(z, a)`` to ``f'(z)`` elementwise, so it can use whichever of the two is
cheaper (the logistic derivative is ``a * (1 - a)``); every ONNX form emits
the function's ONNX nodes through an ``OnnxGraph`` that ``mlptrain.infer.onnx``
supplies (this module imports no onnx). The backward pass in ``network.py`` is
one loop that looks the derivative up here, and the exporter asks the row for
its nodes: adding an activation is adding one row, and the CLI choices, the
ONNX export, the docs and the tests follow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from mlptrain.errors import ConfigError

Array = np.ndarray
LEAKY_SLOPE = 0.01
# The largest x whose 1 / (1 + e^x) is still a normal float: logistic(z) for z below -x is
# held at that value (1.6e-38 in float32) rather than becoming a subnormal or 0.
_EXP_CAP = {np.dtype(t).char: float(math.floor(-math.log(np.finfo(t).tiny)))
            for t in (np.float16, np.float32, np.float64)}


class OnnxGraph(Protocol):
    """The ONNX graph an activation's ONNX form adds its nodes to; tensors are named by strings."""

    def node(self, op: str, inputs: Sequence[str], **attributes: float) -> str:
        """Add one node of the standard-domain operator ``op`` on ``inputs``; returns its output's name."""
        ...

    def constant(self, value: float) -> str:
        """The name of a float32 scalar holding ``value`` (it broadcasts against any tensor)."""
        ...


OnnxForm = Callable[[OnnxGraph, str], str]  # (graph, input name) -> output name; operators of infer.onnx.OPSET


def _onnx_op(op: str, **attributes: float) -> OnnxForm:
    """The ONNX form of an activation that is one ONNX operator."""
    return lambda graph, x: graph.node(op, [x], **attributes)


@dataclass(frozen=True)
class Activation:
    """One row of the table.

    ``family`` groups activations by how they treat the signal: ``"relu"``
    (near z above 0 and near 0 well below it, about half the signal passes:
    He init keeps the variance), ``"saturating"`` (logistic/tanh: Glorot init
    keeps them near the linear region) or ``"linear"``.
    """

    name: str
    function: Callable[[Array, Array | None], Array]  # (z, out=None) -> f(z)
    derivative: Callable[[Array, Array], Array]
    onnx_form: OnnxForm
    family: str
    description: str
    can_die: bool = False  # a unit whose input stays negative gets no useful gradient (relu, leaky-relu)


def _logistic(z: Array, out: Array | None = None) -> Array:
    # 1 / (1 + e^-z) keeps its relative accuracy on both sides of 0 (the tanh form
    # 0.5 + 0.5 tanh(z/2) cancels for z << 0: logistic(-20) came out 0, not 2.1e-9).
    # Its faults, e^-z overflowing for z << 0 and underflowing for z >> 0, are what the
    # cap on the exponent removes; the cap keeps the result a normal float (see _EXP_CAP).
    # As fast as the tanh form; the textbook two-branch select took 2.6x as long.
    out = np.negative(z, out=out)
    cap = _EXP_CAP[out.dtype.char]
    np.clip(out, -cap, cap, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def _tanh(z: Array, out: Array | None = None) -> Array:
    return np.tanh(z, out=out)


def _relu(z: Array, out: Array | None = None) -> Array:
    # max(z, array of zeros), not max(z, 0): NumPy's SIMD loop takes two arrays, and against
    # the scalar it was 3x slower (12.9 vs 5.7 us for 128x256 float32, zeroing included).
    if out is z:
        return np.maximum(z, 0, out=out)  # in place: no array to hold the zeros
    if out is None:
        out = np.zeros_like(z)
    else:
        out.fill(0)
    return np.maximum(z, out, out=out)


def _leaky_relu(z: Array, out: Array | None = None) -> Array:
    if out is z:  # in place: the mask from z as it is, before anything is written
        return np.multiply(z, LEAKY_SLOPE, out=z, where=z < 0)
    out = np.multiply(z, LEAKY_SLOPE, out=out)
    return np.maximum(z, out, out=out)  # max(z, slope z) is the leaky relu for any slope below 1


def _softplus(z: Array, out: Array | None = None) -> Array:
    if out is None:
        out = np.empty_like(z)
    return np.logaddexp(0.0, z, out=out)


def _elu(z: Array, out: Array | None = None) -> Array:
    if out is z:  # in place: the mask from z as it is, before anything is written
        return np.expm1(z, out=z, where=z < 0)
    out = np.minimum(z, 0, out=out)
    np.expm1(out, out=out)
    np.copyto(out, z, where=z > 0)
    return out


def _identity(z: Array, out: Array | None = None) -> Array:
    if out is None:
        return z
    np.copyto(out, z)
    return out


def _elu_derivative(z: Array, a: Array) -> Array:
    # e^z itself, not a + 1 = expm1(z) + 1, which rounds to 0 long before e^z does (z < -17 in float32).
    slope = np.minimum(z, 0)
    np.exp(slope, out=slope)
    np.copyto(slope, 1.0, where=z > 0)
    return slope


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Activation(
            "logistic", _logistic, lambda z, a: a * (1.0 - a), _onnx_op("Sigmoid"), "saturating",
            "1 / (1 + e^-z), output in (0, 1)",
        ),
        Activation(
            "tanh", _tanh, lambda z, a: 1.0 - a * a, _onnx_op("Tanh"), "saturating",
            "hyperbolic tangent, output in (-1, 1)",
        ),
        Activation(
            "relu", _relu, lambda z, a: (z > 0).astype(z.dtype), _onnx_op("Relu"),
            "relu", "max(0, z)", can_die=True,
        ),
        Activation(
            "leaky-relu",
            _leaky_relu,
            lambda z, a: np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
            _onnx_op("LeakyRelu", alpha=LEAKY_SLOPE),
            "relu", f"z if z > 0 else {LEAKY_SLOPE} z", can_die=True,
        ),
        Activation("elu", _elu, _elu_derivative, _onnx_op("Elu", alpha=1.0), "relu", "z if z > 0 else e^z - 1"),
        Activation(
            "softplus", _softplus, lambda z, a: _logistic(z), _onnx_op("Softplus"), "relu",
            "log(1 + e^z), a smooth relu",
        ),
        Activation(
            "identity", _identity, lambda z, a: np.ones_like(z), _onnx_op("Identity"), "linear",
            "z (a linear network)",
        ),
    )
}

ALIASES: dict[str, str] = {"sigmoid": "logistic", "leaky_relu": "leaky-relu", "linear": "identity"}


def activation_names(with_aliases: bool = True) -> list[str]:
    """The names a user may type, for CLI choices and error messages."""
    names = list(ACTIVATIONS)
    return names + sorted(ALIASES) if with_aliases else names


def get_activation(name: str) -> Activation:
    """Look an activation up by name or alias; ConfigError lists the choices."""
    canonical = ALIASES.get(name, name)
    if canonical not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {name!r}; choose one of: {', '.join(activation_names())}"
        )
    return ACTIVATIONS[canonical]
