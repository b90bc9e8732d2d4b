"""The table of optimizers: stateful update rules over a list of parameter arrays.

An optimizer is built for the network's ``parameters()`` (``[W0, b0, W1, …]``)
and then called once per step with the gradients in the same order and the
step's learning rate, so learning-rate schedules live outside the update rule.
An optimizer may ask for its gradients pre-multiplied (``grad_scale``): SGD's
step is ``-lr`` times the gradient, and the backward pass can apply that factor
to the tiny gradient at the logits instead of in a pass over every parameter.
It may also offer arrays for the backward pass to accumulate into
(``accumulator``): SGD's (scaled) velocity is then updated inside the weight
gradients' matrix products, and its step is only ``p += s u`` (see SGD).
Updates are in place: the network's arrays are the optimizer's arrays. Each
optimizer's whole state is ``state()`` (arrays plus a step count), which
checkpoints save and ``load_state`` puts back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from mlptrain.errors import ConfigError
from mlptrain.nn.blas import add_into
from mlptrain.nn.subnormals import FLUSH_EVERY, flush_subnormals, smallest_normal

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
        """The factor the next ``step(..., prescaled=True)`` wants the gradients multiplied by.

        Ask before every step: SGD's factor changes from step to step (see SGD).
        """

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

    def sync(self) -> None:
        """Bring state kept in a cheaper form up to date (SGD's scaled velocity; see SGD).

        The trainer calls it after every epoch, so a checkpoint, and a run resumed
        from it, see the same numbers as a run that never stopped.
        """

    def state(self) -> dict[str, list[Array]]:
        """The optimizer's arrays by name, one list entry per parameter."""

    def flush(self, params: list[Array]) -> None:
        """Zero the subnormal entries of the state and of ``params`` (see nn.subnormals).

        The trainer calls it after every epoch; an optimizer whose state decays every
        step also flushes its state every ``FLUSH_EVERY`` steps.
        """


class SGD:
    """Minibatch SGD with momentum: ``v = mu v - lr g; p += v``.

    Nesterov: ``p += mu v - lr g`` with the new ``v``, i.e. the step looks
    ahead along the velocity (the form used by Sutskever et al. 2013).

    SGD is memory-bound, so with momentum (and without Nesterov) the velocity
    is held scaled: its arrays hold ``u = v / s``, ``s = mu^k`` after ``k``
    steps. A step then only adds to ``u`` (``u += -lr g / s``; the backward
    pass does it inside the weight-gradient products, see ``accumulator``) and
    to ``p`` (``p += s u``); nothing multiplies the velocity by ``mu``.
    ``sync`` folds ``s`` back into ``u``: the trainer calls it after every
    epoch, ``state()`` calls it, and a step calls it once ``s`` falls below
    ``SYNC_BELOW``, long before ``u`` could grow out of float32's range.

    The scaled form needs ``mu >= SCALED_FROM``: for a smaller ``mu`` it would
    fold at least every third step (no cheaper than folding ``mu`` into the
    product every step), and for ``mu`` near float32's smallest values the
    factor ``-lr / (mu s)`` overflows. Below it, the backward pass accumulates
    ``v = mu v - lr g`` with ``beta = mu``: the textbook update, for any ``mu``.
    """

    SYNC_BELOW = 1e-3  # u is then at most ~1000x v
    SCALED_FROM = 0.1

    def __init__(self, params: list[Array], hyper: Hyper) -> None:
        self.momentum, self.nesterov = hyper.momentum, hyper.nesterov
        self.velocity = [np.zeros_like(p) for p in params]
        self.steps = 0
        self._scaled = self.momentum >= self.SCALED_FROM and not self.nesterov
        self._s = 1.0  # the velocity is self._s * self.velocity

    def grad_scale(self, lr: float) -> float:
        # The step's -lr, over the scale the velocity will have after this step.
        return -lr / (self.momentum * self._s) if self._scaled else -lr

    def accumulator(self) -> tuple[list[Array], float] | None:
        # u += -lr g / s is a product accumulated with beta 1 (BLAS then skips its pass over the output);
        # a small momentum accumulates v = mu v - lr g (beta mu); without momentum the product
        # overwrites (beta 0); Nesterov's step needs g on its own.
        if self.nesterov:
            return None
        return self.velocity, 1.0 if self._scaled else self.momentum

    def step(
        self, params: list[Array], grads: list[Array], lr: float, prescaled: bool = False, accumulated: bool = False
    ) -> None:
        if accumulated and self.nesterov:
            raise ValueError("Nesterov SGD takes plain gradients: it offers no accumulator")
        self.steps += 1
        if not accumulated:
            scale = 1.0 if prescaled else self.grad_scale(lr)
            for g, v in zip(grads, self.velocity):
                if not prescaled:
                    g *= scale  # the gradient is ours to reuse: saves an allocation per step
                if not self._scaled:
                    v *= self.momentum
                v += g
        if not self._scaled:
            self._unscaled_update(params, grads)
            if self.momentum and self.steps % FLUSH_EVERY == 0:  # v *= mu every step: decays into subnormals
                for v, g in zip(self.velocity, grads):
                    flush_subnormals(v, None if accumulated else g)
            return
        # The scaled u is multiplied only when folded, by s < 1e-3: a subnormal it holds is gone by the next fold.
        self._s *= self.momentum
        for p, u in zip(params, self.velocity):
            add_into(p, u, self._s)
        if self._s < self.SYNC_BELOW:
            self.sync()

    def _unscaled_update(self, params: list[Array], grads: list[Array]) -> None:
        """``p += v`` (no momentum), or Nesterov's ``p += mu v + g`` (``grads`` prescaled)."""
        for p, g, v in zip(params, grads, self.velocity):
            if self.nesterov:
                p += self.momentum * v + g
            else:
                add_into(p, v)

    def sync(self) -> None:
        if self._s != 1.0:
            for u in self.velocity:
                u *= self._s
            self._s = 1.0

    def state(self) -> dict[str, list[Array]]:
        self.sync()
        return {"velocity": self.velocity}

    def flush(self, params: list[Array]) -> None:
        self.sync()
        for x in (*self.velocity, *params):
            flush_subnormals(x)


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction; AdamW adds decoupled weight decay.

    AdamW (Loshchilov & Hutter 2019) shrinks each weight matrix by
    ``lr * weight_decay * W`` outside the adaptive update; biases and a norm's scale and shift (the 1-D
    parameters) are not decayed.
    """

    def __init__(self, params: list[Array], hyper: Hyper, decoupled: bool = False) -> None:
        self.beta1, self.beta2, self.eps = hyper.beta1, hyper.beta2, hyper.eps
        self.decay = hyper.weight_decay if decoupled else 0.0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.steps = 0
        self._tiny = smallest_normal(params[0].dtype if params else np.float32)

    def grad_scale(self, lr: float) -> float:
        return 1.0  # the update is not linear in the gradient

    def accumulator(self) -> tuple[list[Array], float] | None:
        return None  # m and v need the gradient alone (and v its square)

    def sync(self) -> None:
        pass  # m and v are always held as they are

    def step(
        self, params: list[Array], grads: list[Array], lr: float, prescaled: bool = False, accumulated: bool = False
    ) -> None:
        if accumulated:
            raise ValueError("Adam takes plain gradients: it offers no accumulator")
        self.steps += 1
        t = self.steps
        b1, b2 = self.beta1, self.beta2
        step_size = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        # eps of the bias-corrected form m_hat / (sqrt(v_hat) + eps), kept a normal float: a tiny
        # --eps (1e-44) would otherwise round to 0 and give 0/0 where m and v are 0 (blank pixels).
        eps = max(self.eps * np.sqrt(1 - b2**t), self._tiny)
        flush = t % FLUSH_EVERY == 0  # m *= b1, v *= b2 every step: entries with no gradient decay into subnormals
        for p, g, m, v in zip(params, grads, self.m, self.v):
            if self.decay and p.ndim == 2:  # the weight matrices
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
            if flush:
                flush_subnormals(m, g)
                flush_subnormals(v, g)

    def state(self) -> dict[str, list[Array]]:
        return {"m": self.m, "v": self.v}

    def flush(self, params: list[Array]) -> None:
        for x in (*self.m, *self.v, *params):
            flush_subnormals(x)


def _adamw(params: list[Array], hyper: Hyper) -> Adam:
    """AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019); biases are not decayed."""
    return Adam(params, hyper, decoupled=True)


OPTIMIZERS: dict[str, Callable[[list[Array], Hyper], Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": _adamw,
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
