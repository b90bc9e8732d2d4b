"""The training loop and evaluation. Reports through callbacks; never prints.

Randomness comes from one ``SeedSequence(config.seed)`` split into independent
streams for the initial weights, the validation split and the per-epoch
shuffles, so the same config and seed give the same numbers, and changing
e.g. the init does not change which images are held out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from mlptrain.config import Config
from mlptrain.data import Dataset, gather_batch
from mlptrain.errors import ConfigError
from mlptrain.initializers import get_initializer
from mlptrain.network import Network, forward, init_network, loss_and_gradients, softmax_cross_entropy
from mlptrain.optimizers import make_optimizer

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


@dataclass
class FitResult:
    network: Network
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Split:
    """Indices into the training images: the part trained on and the held-out part."""

    train: Array
    val: Array


EpochCallback = Callable[[dict[str, float]], None]
BatchCallback = Callable[[int, int], None]  # (batches done, batches per epoch)


def split_validation(n: int, val_size: int, rng: np.random.Generator) -> Split:
    """Hold out ``val_size`` random training images for validation."""
    order = rng.permutation(n)
    return Split(train=np.sort(order[val_size:]), val=np.sort(order[:val_size]))


def build_network(config: Config, n_inputs: int, n_classes: int, rng: np.random.Generator) -> Network:
    """The freshly initialised network a config describes (``config.init`` must be set)."""
    sizes = [n_inputs, *config.hidden, n_classes]
    return init_network(
        sizes, config.activation, get_initializer(config.init), rng,
        config.init_range, config.init_std, config.bias_init, np.dtype(config.dtype),
    )


def check_fits_data(config: Config, data: Dataset) -> None:
    """Reject settings that only turn out wrong once the data's size is known."""
    n = len(data.train_images)
    if config.val_size >= n:
        raise ConfigError(
            f"val_size {config.val_size} leaves no training images: the training set holds {n}; "
            "lower --val-size"
        )


def fit(
    config: Config,
    data: Dataset,
    on_epoch: EpochCallback | None = None,
    on_batch: BatchCallback | None = None,
) -> FitResult:
    """Train a network as ``config`` says; call ``on_epoch`` with each epoch's metrics."""
    check_fits_data(config, data)
    init_seed, split_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(3)
    split = split_validation(len(data.train_images), config.val_size, np.random.default_rng(split_seed))
    net = build_network(config, data.n_inputs, data.n_classes, np.random.default_rng(init_seed))
    optimizer = make_optimizer(config.optimizer, net.parameters(), config.momentum)
    shuffle_rng = np.random.default_rng(shuffle_seed)
    result = FitResult(net)
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        order = shuffle_rng.permutation(split.train)
        train_loss, train_acc = _train_epoch(net, optimizer, data, order, config, on_batch)
        metrics = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc}
        if len(split.val):
            val = evaluate(net, data.train_images[split.val], data.train_labels[split.val])
            metrics.update(val_loss=val.loss, val_acc=val.accuracy)
        metrics.update(lr=config.lr, seconds=time.perf_counter() - started)
        result.history.append(metrics)
        if on_epoch:
            on_epoch(metrics)
    return result


def _train_epoch(
    net: Network, optimizer, data: Dataset, order: Array, config: Config, on_batch: BatchCallback | None
) -> tuple[float, float]:
    """One pass over ``order``; returns the mean loss and accuracy seen during the pass."""
    params = net.parameters()
    n_batches = -(-len(order) // config.batch_size)
    loss_sum = correct = 0.0
    for b in range(n_batches):
        indices = order[b * config.batch_size:(b + 1) * config.batch_size]
        x = gather_batch(data.train_images, indices, net.dtype)
        labels = data.train_labels[indices]
        loss, grads, logits = loss_and_gradients(net, x, labels)
        optimizer.step(params, grads, config.lr)
        loss_sum += loss * len(indices)
        correct += int(np.count_nonzero(logits.argmax(axis=1) == labels))
        if on_batch:
            on_batch(b + 1, n_batches)
    return loss_sum / len(order), correct / len(order)


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
