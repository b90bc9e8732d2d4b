"""The table of hidden-unit activations: name -> (function, derivative).

Every function maps a pre-activation array ``z`` to ``a = f(z)``; every
derivative maps ``(z, a)`` to ``f'(z)`` elementwise, so it can use whichever of
the two is cheaper (the logistic derivative is ``a * (1 - a)``). The backward
pass in ``network.py`` is one loop that looks the derivative up here: adding an
activation is adding one row, and the CLI choices and the tests follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mlptrain.errors import ConfigError

Array = np.ndarray
LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """One row of the table.

    ``family`` groups activations by how they treat the signal: ``"relu"``
    (piecewise linear, half the units off: He init keeps the variance),
    ``"saturating"`` (logistic/tanh: Glorot init keeps them near the linear
    region) or ``"linear"``.
    """

    name: str
    function: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array]
    family: str
    description: str
    can_die: bool = False  # a unit whose input stays negative gets no useful gradient (relu, leaky-relu)


def _logistic(z: Array) -> Array:
    # The tanh form never overflows, unlike 1 / (1 + exp(-z)) for large -z.
    return 0.5 * np.tanh(0.5 * z) + 0.5


def _softplus(z: Array) -> Array:
    return np.logaddexp(0.0, z).astype(z.dtype, copy=False)


def _elu(z: Array) -> Array:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _elu_derivative(z: Array, a: Array) -> Array:
    return np.where(z > 0, 1.0, a + 1.0).astype(z.dtype, copy=False)


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Activation(
            "logistic", _logistic, lambda z, a: a * (1.0 - a), "saturating",
            "1 / (1 + e^-z), output in (0, 1)",
        ),
        Activation(
            "tanh", np.tanh, lambda z, a: 1.0 - a * a, "saturating",
            "hyperbolic tangent, output in (-1, 1)",
        ),
        Activation(
            "relu", lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype),
            "relu", "max(0, z)", can_die=True,
        ),
        Activation(
            "leaky-relu",
            lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
            lambda z, a: np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
            "relu", f"z if z > 0 else {LEAKY_SLOPE} z", can_die=True,
        ),
        Activation("elu", _elu, _elu_derivative, "relu", "z if z > 0 else e^z - 1"),
        Activation(
            "softplus", _softplus, lambda z, a: _logistic(z), "relu",
            "log(1 + e^z), a smooth relu",
        ),
        Activation(
            "identity", lambda z: z, lambda z, a: np.ones_like(z), "linear",
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
