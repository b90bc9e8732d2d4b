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
GELU_CUBIC = 0.044715  # the tanh approximation's z^3 coefficient (Hendrycks and Gimpel 2016)
_GELU_LINEAR = 2 * math.sqrt(2 / math.pi)  # u = z (_GELU_LINEAR + _GELU_CUBIC z^2), the logistic's argument
_GELU_CUBIC = _GELU_LINEAR * GELU_CUBIC
_GELU_CLIP = 50.0  # |u| is about 9000 there, past every _EXP_CAP: beyond it the gate is 1 or the logistic's floor


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
    # max(z, array of zeros), not max(z, 0): NumPy's SIMD loop takes two arrays; against the
    # scalar it is several times slower, zeroing included (benchmarks/NOTES.md).
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


def _times_gate(gate: Callable[[Array, Array | None], Array]) -> Callable[[Array, Array | None], Array]:
    """The activation ``z * gate(z)``, into ``out``; in place the gate needs a scratch array, as z is still read."""
    def function(z: Array, out: Array | None = None) -> Array:
        g = gate(z, None if out is z else out)
        return np.multiply(z, g, out=z if out is z else g)
    return function


def _gelu_gate(z: Array, out: Array | None = None) -> Array:
    """gelu's factor 0.5 (1 + tanh(u/2)) as logistic(u), u = 2 sqrt(2/pi) (z + 0.044715 z^3); same shape as z."""
    # The logistic, not 1 + tanh: in float32 that sum rounds to 0 below z = -5.4, the logistic keeps its
    # relative accuracy. Clipping z at +-_GELU_CLIP changes no result (u is then past every dtype's cap in
    # _logistic) and keeps z^3 finite.
    w = np.clip(z, -_GELU_CLIP, _GELU_CLIP, out=out)
    inner = np.multiply(w, w)
    inner *= _GELU_CUBIC
    inner += _GELU_LINEAR
    w *= inner
    return _logistic(w, out=w)


_silu = _times_gate(_logistic)
_gelu = _times_gate(_gelu_gate)


def _silu_derivative(z: Array, a: Array) -> Array:
    # (z s)' = s + z s (1 - s) = s + a (1 - s), s = logistic(z): 1 - s is exactly 0 where s rounds to 1.
    s = _logistic(z)
    slope = np.subtract(1.0, s)
    slope *= a
    slope += s
    return slope


def _gelu_derivative(z: Array, a: Array) -> Array:
    # (z s(u))' = s + z s (1 - s) u'(z), u' = 2 sqrt(2/pi) (1 + 3 0.044715 z^2); z clipped as in the gate,
    # so z^2 stays finite and far below 0 the slope is about 0, not z^3 times the logistic's floor.
    w = np.clip(z, -_GELU_CLIP, _GELU_CLIP)
    s = _gelu_gate(w)
    rate = np.multiply(w, w)
    rate *= 3 * _GELU_CUBIC
    rate += _GELU_LINEAR
    rate *= w
    slope = np.subtract(1.0, s)
    slope *= s
    slope *= rate
    slope += s
    return slope


def _silu_onnx(graph: OnnxGraph, x: str) -> str:
    return graph.node("Mul", [x, graph.node("Sigmoid", [x])])


def _gelu_onnx(graph: OnnxGraph, x: str) -> str:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), node for node as published.

    The Gelu operator needs opset 20. In this order (x^3 as Pow, 0.5 x last but one) it is the pattern
    onnxruntime fuses into its one FastGelu kernel.
    """
    cubic = graph.node("Mul", [graph.node("Pow", [x, graph.constant(3.0)]), graph.constant(GELU_CUBIC)])
    inner = graph.node("Mul", [graph.node("Add", [x, cubic]), graph.constant(math.sqrt(2 / math.pi))])
    one_plus = graph.node("Add", [graph.node("Tanh", [inner]), graph.constant(1.0)])
    return graph.node("Mul", [graph.node("Mul", [x, graph.constant(0.5)]), one_plus])


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
        # silu and gelu are relu-like (family "relu", so He init): about z above 0 and about 0 well below it,
        # unbounded above, so nothing saturates on the positive side. They never die (can_die False): the slope
        # is non-zero for z < 0 too, as for elu and softplus.
        Activation(
            "silu", _silu, _silu_derivative, _silu_onnx, "relu",
            "z / (1 + e^-z): z times its logistic, a smooth relu that dips below 0",
        ),
        Activation(
            "gelu", _gelu, _gelu_derivative, _gelu_onnx, "relu",
            f"0.5 z (1 + tanh(sqrt(2/pi) (z + {GELU_CUBIC} z^3))): z Phi(z) by the tanh approximation",
        ),
        Activation(
            "identity", _identity, lambda z, a: np.ones_like(z), _onnx_op("Identity"), "linear",
            "z (a linear network)",
        ),
    )
}

# Other names for the same function: swish is silu's name in the Swish paper, Keras and JAX (beta = 1).
ALIASES: dict[str, str] = {
    "sigmoid": "logistic", "leaky_relu": "leaky-relu", "linear": "identity", "swish": "silu",
}


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
