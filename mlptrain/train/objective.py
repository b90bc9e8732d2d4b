"""The training loss: the one place the config's loss options become the loss a step minimises.

Training (``Trainer``) takes its loss and gradients from ``Objective.loss_and_gradients``
and the gradient check (``tune.gradcheck``) compares the same call with
``Objective.difference_quotient``, central differences of the same loss; an
option added here is trained with and checked at once. What the loss leaves out
on purpose: decoupled weight decay (the optimizer's step applies it, outside any
gradient), dropout (random masks), max-norm (a projection after the step) and
augmentation (it changes the inputs, not the loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlptrain.config import Config
from mlptrain.nn.network import Network, Workspace, cross_entropy_difference, loss_and_gradients
from mlptrain.nn.optimizers import DECOUPLED_DECAY

Array = np.ndarray


@dataclass(frozen=True)
class Objective:
    """Mean cross-entropy against the (smoothed) targets, plus ``l2 / 2 * sum(W**2)`` over the weights."""

    label_smoothing: float = 0.0
    l2: float = 0.0  # weight decay in the gradient; 0 when the optimizer decays the weights itself

    def loss_and_gradients(
        self, net: Network, x: Array, labels: Array, masks: list[Array | None] | None = None,
        workspace: Workspace | None = None, grad_scale: float = 1.0, grad_beta: float = 0.0, update: bool = False,
    ) -> tuple[float, list[Array], Array]:
        """``nn.network.loss_and_gradients`` of this loss: data loss, gradients ``[dW0, db0, …]``, logits.

        ``update``: batch norm folds the batch's statistics into its running ones (training steps do).
        """
        return loss_and_gradients(net, x, labels, self.l2, masks, workspace, grad_scale, grad_beta,
                                  self.label_smoothing, update)

    def difference_quotient(self, up: Array, down: Array, labels: Array, eps: float, weight: float | None) -> float:
        """``(loss(+eps) - loss(-eps)) / (2 eps)`` for one parameter entry moved by ``±eps``.

        ``up`` and ``down`` are the logits ``(n, classes)`` at the two points;
        ``weight`` the entry's value when it is a weight (its L2 term's exact
        quotient is ``l2 * weight``), None for a bias (biases are not decayed).
        """
        data = float(cross_entropy_difference(up, down, labels, self.label_smoothing).mean()) / (2 * eps)
        return data + (self.l2 * weight if weight is not None else 0.0)

    def describe(self) -> str:
        """E.g. ``cross-entropy with label smoothing 0.1, plus the L2 term of weight decay 0.0005``."""
        text = "cross-entropy"
        if self.label_smoothing:
            text += f" with label smoothing {self.label_smoothing:g}"
        if self.l2:
            text += f", plus the L2 term of weight decay {self.l2:g}"
        return text


def training_objective(config: Config) -> Objective:
    """The loss ``config``'s training steps minimise (its weight decay only when the optimizer adds it as L2)."""
    return Objective(config.label_smoothing, 0.0 if config.optimizer in DECOUPLED_DECAY else config.weight_decay)
