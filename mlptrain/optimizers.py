"""The table of optimizers: stateful update rules over a list of parameter arrays.

An optimizer is built for the network's ``parameters()`` (``[W0, b0, W1, …]``)
and then called once per step with the gradients in the same order and the
step's learning rate, so learning-rate schedules live outside the update rule.
An optimizer may ask for its gradients pre-multiplied (``grad_scale``): SGD's
step is ``-lr`` times the gradient, and the backward pass can apply that factor
to the tiny gradient at the logits instead of in a pass over every parameter.
It may also offer arrays for the backward pass to accumulate into
(``accumulator``): SGD's velocity ``v = mu v - lr g`` is then computed inside
the weight gradients' matrix products, and its step is only ``p += v``.
Updates are in place: the network's arrays are the optimizer's arrays. Each
optimizer's whole state is ``state()`` (arrays plus a step count), which
checkpoints save and ``load_state`` puts back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from mlptrain.blas import add_into
from mlptrain.errors import ConfigError

Array = np.ndarray


@dataclass(frozen=True)
class Hyper:
    """The optimizer settings from the config (each optimizer reads the ones it uses)."""

    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0  # only AdamW uses it here; the others get L2 in the gradient


class Optimizer(Protocol):
    steps: int

    def grad_scale(self, lr: float) -> float:
        """The factor ``step(..., prescaled=True)`` wants the gradients multiplied by."""

    def accumulator(self) -> tuple[list[Array], float] | None:
        """Arrays (one per parameter) and ``beta`` for backward to compute ``beta * held + gradient`` in.

        None: this optimizer wants the gradients on their own.
        """

    def step(
        self, params: list[Array], grads: list[Array], lr: float, prescaled: bool = False, accumulated: bool = False
    ) -> None:
        """Update ``params`` in place; ``grads`` may be overwritten.

        ``prescaled``: ``grads`` are already ``grad_scale(lr)`` times the gradients.
        ``accumulated``: ``grads`` are the ``accumulator()`` arrays, which the
        backward pass has already set to ``beta * held + prescaled gradient``.
        """

    def state(self) -> dict[str, list[Array]]:
        """The optimizer's arrays by name, one list entry per parameter."""


class SGD:
    """Minibatch SGD with momentum: ``v = mu v - lr g; p += v``.

    Nesterov: ``p += mu v - lr g`` with the new ``v``, i.e. the step looks
    ahead along the velocity (the form used by Sutskever et al. 2013).
    With prescaled gradients (``-lr g``, see ``grad_scale``) the update is
    three passes over the parameters instead of four, and with the velocity
    accumulated by the backward pass (``accumulator``) one: SGD is memory-bound.
    """

    def __init__(self, params: list[Array], hyper: Hyper) -> None:
        self.momentum, self.nesterov = hyper.momentum, hyper.nesterov
        self.velocity = [np.zeros_like(p) for p in params]
        self.steps = 0

    def grad_scale(self, lr: float) -> float:
        return -lr  # then the gradient is the step: v = mu v + g

    def accumulator(self) -> tuple[list[Array], float] | None:
        # v = mu v + (-lr g) is backward's accumulating product; Nesterov's step needs g on its own.
        return None if self.nesterov else (self.velocity, self.momentum)

    def step(
        self, params: list[Array], grads: list[Array], lr: float, prescaled: bool = False, accumulated: bool = False
    ) -> None:
        self.steps += 1
        if accumulated:  # grads are our velocity, already mu v - lr g
            for p, v in zip(params, grads):
                add_into(p, v)
            return
        for p, g, v in zip(params, grads, self.velocity):
            if not prescaled:
                g *= -lr  # the gradient is ours to reuse: saves an allocation per step
            v *= self.momentum
            v += g
            if self.nesterov:
                p += self.momentum * v + g
            else:
                add_into(p, v)

    def state(self) -> dict[str, list[Array]]:
        return {"velocity": self.velocity}


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction; AdamW adds decoupled weight decay.

    AdamW (Loshchilov & Hutter 2019) shrinks each weight matrix by
    ``lr * weight_decay * W`` outside the adaptive update; biases are not decayed.
    """

    def __init__(self, params: list[Array], hyper: Hyper, decoupled: bool = False) -> None:
        self.beta1, self.beta2, self.eps = hyper.beta1, hyper.beta2, hyper.eps
        self.decay = hyper.weight_decay if decoupled else 0.0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.steps = 0

    def grad_scale(self, lr: float) -> float:
        return 1.0  # the update is not linear in the gradient

    def accumulator(self) -> tuple[list[Array], float] | None:
        return None  # m and v need the gradient alone (and v its square)

    def step(
        self, params: list[Array], grads: list[Array], lr: float, prescaled: bool = False, accumulated: bool = False
    ) -> None:
        if accumulated:
            raise ValueError("Adam takes plain gradients: it offers no accumulator")
        self.steps += 1
        t = self.steps
        b1, b2 = self.beta1, self.beta2
        step_size = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        eps = self.eps * np.sqrt(1 - b2**t)  # eps of the bias-corrected form m_hat / (sqrt(v_hat) + eps)
        for i, (p, g, m, v) in enumerate(zip(params, grads, self.m, self.v)):
            if self.decay and i % 2 == 0:  # even entries are weight matrices
                p *= 1 - lr * self.decay
            # The gradient buffer is the scratch space: no allocation per step.
            m *= b1
            g *= 1 - b1
            m += g  # m = b1 m + (1 - b1) g
            g *= g
            g *= (1 - b2) / (1 - b1) ** 2
            v *= b2
            v += g  # v = b2 v + (1 - b2) g^2
            np.sqrt(v, out=g)
            g += eps
            np.divide(m, g, out=g)
            g *= step_size
            p -= g

    def state(self) -> dict[str, list[Array]]:
        return {"m": self.m, "v": self.v}


OPTIMIZERS: dict[str, Callable[[list[Array], Hyper], Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": lambda params, hyper: Adam(params, hyper, decoupled=True),
}
# Where the config's weight_decay goes: into the gradient as L2, or decoupled into the update.
DECOUPLED_DECAY = {"adamw"}


def make_optimizer(name: str, params: list[Array], hyper: Hyper) -> Optimizer:
    """Build the named optimizer for ``params``; ConfigError lists the choices."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, hyper)


def load_state(optimizer: Optimizer, arrays: dict[str, list[Array]], steps: int) -> None:
    """Copy a saved ``state()`` back into ``optimizer`` (same names and shapes)."""
    for name, saved in arrays.items():
        for current, value in zip(optimizer.state()[name], saved, strict=True):
            current[...] = value
    optimizer.steps = steps
