"""The table of optimizers: stateful update rules over a list of parameter arrays.

An optimizer is built for the network's ``parameters()`` and then called once
per step with the gradients in the same order and the step's learning rate
(so learning-rate schedules live outside the update rule). Updates are in
place: the network's arrays are the optimizer's arrays.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from mlptrain.errors import ConfigError

Array = np.ndarray


class Optimizer(Protocol):
    def step(self, params: list[Array], grads: list[Array], lr: float) -> None:
        """Update ``params`` in place; ``grads`` may be overwritten."""


class SGD:
    """Minibatch SGD with classical momentum: ``v = mu v - lr g; p += v``."""

    def __init__(self, params: list[Array], momentum: float = 0.9) -> None:
        self.momentum = momentum
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, params: list[Array], grads: list[Array], lr: float) -> None:
        for p, g, v in zip(params, grads, self.velocity):
            g *= lr  # the gradient is ours to reuse: saves an allocation per step
            v *= self.momentum
            v -= g
            p += v


OptimizerFactory = Callable[..., Optimizer]
OPTIMIZERS: dict[str, OptimizerFactory] = {"sgd": SGD}


def make_optimizer(name: str, params: list[Array], momentum: float) -> Optimizer:
    """Build the named optimizer for ``params``; ConfigError lists the choices."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, momentum=momentum)
