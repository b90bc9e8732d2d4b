"""Evaluation: loss, accuracy and the confusion matrix of a network on a data split, through the one core."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlptrain.data.loading import gather_batch
from mlptrain.nn.network import Network, forward, softmax_cross_entropy

Array = np.ndarray
EVAL_BATCH = 2000


@dataclass
class Evaluation:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted)."""

    loss: float
    accuracy: float
    confusion: Array

    @property
    def per_class_accuracy(self) -> list[float | None]:
        """Recall of each class; None for a class with no samples."""
        totals = self.confusion.sum(axis=1)
        return [None if t == 0 else float(self.confusion[c, c] / t) for c, t in enumerate(totals)]


def evaluate(net: Network, images: Array, labels: Array, n_classes: int | None = None) -> Evaluation:
    """Loss, accuracy and confusion matrix of ``net`` on uint8 ``images`` ``(n, pixels)``."""
    n_classes = n_classes or net.sizes[-1]
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    loss_sum = 0.0
    for start in range(0, len(images), EVAL_BATCH):
        x = gather_batch(images, slice(start, start + EVAL_BATCH), net.dtype)
        y = labels[start:start + EVAL_BATCH]
        logits = forward(net, x).logits
        loss, _ = softmax_cross_entropy(logits, y)
        loss_sum += loss * len(y)
        np.add.at(confusion, (y, logits.argmax(axis=1)), 1)
    accuracy = float(np.trace(confusion) / max(len(images), 1))
    return Evaluation(loss=loss_sum / max(len(images), 1), accuracy=accuracy, confusion=confusion)
