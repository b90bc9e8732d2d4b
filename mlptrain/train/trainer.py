"""The training loop and evaluation. Reports through callbacks; never prints.

Randomness comes from one ``SeedSequence(config.seed)`` split into independent
streams for the initial weights, the validation split, the per-epoch shuffles
and the dropout masks, so the same config and seed give the same numbers, and
changing e.g. the init does not change which images are held out.

A ``Trainer`` holds everything that changes while training (weights,
optimizer state, generators, history, early-stopping state); ``state_arrays``
and ``restore`` turn it into plain arrays and back, which is what makes a
resumed run identical to one that was never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from mlptrain.config import MONITORS, Config
from mlptrain.data.loading import Dataset, gather_batch
from mlptrain.data.parts import count_of
from mlptrain.errors import ConfigError, DivergedError
from mlptrain.nn.initializers import get_initializer
from mlptrain.nn.network import Network, Workspace, apply_max_norm, dropout_masks, init_network
from mlptrain.nn.norms import check_batches
from mlptrain.nn.optimizers import Hyper, load_state, make_optimizer
from mlptrain.nn.schedules import ScheduleParams, lr_at
from mlptrain.train.advice import Context, advise, explain
from mlptrain.train.batches import BatchSource
from mlptrain.train.causes import diagnose_divergence, diagnose_run_epoch, earlier_cause, loss_stats
from mlptrain.train.datacheck import check_data
from mlptrain.train.diagnostics import (
    EVENT_CODES,
    HealthWarning,
    LayerHealth,
    check_epoch,
    check_init,
    context_for,
    raised_in_a_run_of,
)
from mlptrain.train.evaluate import evaluate
from mlptrain.train.objective import training_objective
from mlptrain.train.progress import Metrics, Progress, checked_progress

Array = np.ndarray
PROBE_SIZE = 1000  # training images the diagnostics look at after every epoch
BatchCallback = Callable[[int, int], None]  # (batches done, batches per epoch)


@dataclass
class Split:
    """Indices into the training images: the part trained on and the held-out part."""

    train: Array
    val: Array


def check_fits_data(config: Config, data: Dataset) -> None:
    """Reject settings that only turn out wrong once the data's size is known."""
    n = len(data.train_images)
    if count_of(config.val_size, n) >= n:
        raise ConfigError(
            f"val_size {config.val_size} leaves no training images: the training set holds {n}; "
            f"lower --val-size (a count below {n}, or a fraction such as 10%)"
        )
    check_batches(config.norm, n - count_of(config.val_size, n), config.batch_size)
    if config.augment and len(data.image_shape) != 2:
        raise ConfigError(
            f"augment needs images with two dimensions, but {data.name}'s have shape {data.image_shape}; "
            "leave augment out for this data set"
        )


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
        config.norm, config.norm_eps, config.norm_momentum,
    )


def seed_streams(seed: int) -> list[np.random.SeedSequence]:
    """The run's independent streams: init, validation split, shuffles, dropout, probe, augmentation.

    ``spawn(n)``'s first children do not depend on ``n``: adding a stream changes no earlier one.
    """
    return np.random.SeedSequence(seed).spawn(6)


def initial_network(config: Config, n_inputs: int, n_classes: int) -> Network:
    """Exactly the initial weights a ``Trainer`` for ``config`` starts from (same seed stream)."""
    return build_network(config, n_inputs, n_classes, np.random.default_rng(seed_streams(config.seed)[0]))


def _hyper(config: Config) -> Hyper:
    return Hyper(config.momentum, config.nesterov, config.beta1, config.beta2, config.eps, config.weight_decay)


def schedule_params(config: Config) -> ScheduleParams:
    return ScheduleParams(
        config.lr, config.epochs, config.warmup_epochs, config.lr_step, config.lr_gamma, config.lr_min
    )


class Trainer:
    """Trains ``config``'s network on ``data``, one epoch per ``run_epoch`` call."""

    def __init__(self, config: Config, data: Dataset) -> None:
        check_fits_data(config, data)
        self.config, self.data = config, data
        seeds = seed_streams(config.seed)
        init_seed, split_seed, shuffle_seed, dropout_seed, probe_seed, augment_seed = seeds
        n = len(data.train_images)
        self.split = split_validation(n, count_of(config.val_size, n), np.random.default_rng(split_seed))
        probe_rng = np.random.default_rng(probe_seed)
        self.probe = np.sort(probe_rng.choice(self.split.train, min(PROBE_SIZE, len(self.split.train)), False))
        self.net = build_network(config, data.n_inputs, data.n_classes, np.random.default_rng(init_seed))
        self.optimizer = make_optimizer(config.optimizer, self.net.parameters(), _hyper(config))
        # Every step reuses the workspace's arrays; an optimizer with an accumulator
        # (SGD's velocity) has the backward pass fold the gradients into its own.
        accumulator = self.optimizer.accumulator()
        self.accumulates = accumulator is not None
        grads, self.grad_beta = accumulator or (None, 0.0)
        self.workspace = Workspace(self.net, config.batch_size, grads)
        self.batches = BatchSource(data, self.net.dtype, config.batch_size, config.augment, augment_seed)
        self.shuffle_rng = np.random.default_rng(shuffle_seed)
        self.dropout_rng = np.random.default_rng(dropout_seed)
        self.objective = training_objective(config)  # the loss; the gradient check checks the same one
        self.progress = Progress()
        self.best_params: list[Array] | None = None
        self._reported = 0  # how many of progress.warnings the caller has seen
        self.batch_loss = math.nan  # the last training batch's loss, for a batch callback that records it

    def probe_batch(self) -> tuple[Array, Array]:
        """The diagnostics' probe batch: images ``(n, pixels)`` as floats of the net's dtype, and labels."""
        return gather_batch(self.data.train_images, self.probe, self.net.dtype), self.data.train_labels[self.probe]

    def train_batch(self, indices: Array, lr: float) -> float:
        """One optimizer step on training images ``indices`` at ``lr``, the epoch loop's own; the batch loss.

        DivergedError when the loss is not finite (before the step is applied).
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss, _ = self._train_epoch(np.asarray(indices), lr, None)
        return loss

    def context(self) -> Context:
        """What the advice depends on: the net's activation and sizes, the decay, the (peak) lr, the bias init."""
        return context_for(self.net, self.config.weight_decay, self.config.lr, self.config.bias_init)

    def check_init(self) -> list[LayerHealth]:
        """Run the data check and the init check; their warnings join ``progress.warnings`` (epoch 0)."""
        x, labels = self.probe_batch()
        self.progress.inputs, data_warnings = check_data(self.data.train_images, x, self.data.image_shape,
                                                         self.context())
        rows, warnings = check_init(self.net, x, labels, self.config.signal_factor, self.context(),
                                    earlier_cause([w.as_dict() for w in data_warnings]))
        self.progress.init_health = [vars(r) for r in rows]
        self._add_warnings(data_warnings + warnings)
        return rows

    def diverged(self, epoch: int, what: str) -> DivergedError:
        """The error for a loss or weights gone NaN/inf, with its cause and the advice for it."""
        diagnosis = diagnose_divergence(earlier_cause(self.progress.warnings), what, self.context())
        return DivergedError(epoch, what, advise(diagnosis, self.context()), diagnosis.cause, diagnosis.evidence)

    def add_warning(self, warning: HealthWarning) -> None:
        self._add_warnings([warning])

    def _add_warnings(self, warnings: list[HealthWarning], epoch: int | None = None) -> None:
        """Record each (code, layer) the first time it shows; with ``epoch``, also mark as cleared
        the earlier ones whose condition no longer holds (a warning repeated every epoch says nothing new)."""
        active = {(w.code, w.layer) for w in warnings}
        for old in self.progress.warnings:
            key = (old["code"], old["layer"])
            if epoch is not None and old["cleared"] is None and old["code"] not in EVENT_CODES and key not in active:
                old["cleared"] = epoch
        seen = {(w["code"], w["layer"]) for w in self.progress.warnings if w["cleared"] is None}
        for w in warnings:
            if (w.code, w.layer) not in seen:
                self.progress.warnings.append(w.as_dict())
                seen.add((w.code, w.layer))

    def new_warnings(self) -> list[dict[str, Any]]:
        """Warnings recorded since the last call (for the caller to show)."""
        fresh = self.progress.warnings[self._reported:]
        self._reported = len(self.progress.warnings)
        return fresh

    @property
    def finished(self) -> bool:
        return self.progress.stop_reason is not None

    def run_epoch(self, on_batch: BatchCallback | None = None) -> Metrics:
        """Train one epoch, evaluate on the validation split, update the early-stopping state.

        NumPy's overflow warnings are silenced: a loss or weight that is no
        longer finite raises DivergedError instead, with advice.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._run_epoch(on_batch)

    def _run_epoch(self, on_batch: BatchCallback | None) -> Metrics:
        started = time.perf_counter()
        lr = lr_at(self.config.lr_schedule, self.progress.epoch, schedule_params(self.config))
        order = self.shuffle_rng.permutation(self.split.train)
        before = [w.copy() for w in self.net.weights]
        epoch = self.progress.epoch + 1
        train_loss, train_acc = self._train_epoch(order, lr, on_batch)
        # Entries that decayed below float32's smallest normal would slow every later epoch (nn.subnormals).
        self.optimizer.flush(self.net.parameters())
        self._check_finite(epoch)
        metrics: Metrics = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                            **loss_stats(self.batch_losses, self.data.n_classes)}
        if len(self.split.val):
            val = evaluate(self.net, self.data.train_images[self.split.val], self.data.train_labels[self.split.val])
            metrics.update(val_loss=val.loss, val_acc=val.accuracy)
        metrics.update(lr=lr, seconds=time.perf_counter() - started)
        metrics["layers"] = self._health(metrics, before)
        self._record(metrics)
        return metrics

    def _health(self, metrics: Metrics, before: list[Array]) -> list[dict[str, float]]:
        """Per-layer health, with each layer's update-to-weight ratio over the epoch; the warnings, with their cause."""
        epoch, train_loss = int(metrics["epoch"]), float(metrics["train_loss"])
        rows, warnings = check_epoch(self.net, *self.probe_batch(), epoch, train_loss, self.config.epochs,
                                     self.config.signal_factor, self.progress.init_health)
        health = []
        for row, old, new in zip(rows, before, self.net.weights):
            change = float(np.sqrt(np.mean(np.square(new - old, dtype=np.float64))))
            health.append(vars(row) | {"update_ratio": change / row.weight_rms if row.weight_rms else 0.0})
        if warnings:
            p, ctx = self.progress, self.context()
            diagnosis = diagnose_run_epoch(p.warnings, [*p.history, metrics | {"layers": health}], p.init_health,
                                           self.data.n_classes, ctx)
            warnings = [explain(w, diagnosis, ctx) for w in warnings]
        self._add_warnings(warnings, epoch)
        return health

    def _check_finite(self, epoch: int) -> None:
        if not all(np.isfinite(p).all() for p in self.net.variables()):
            raise self.diverged(epoch, "the weights became NaN or infinite")

    def _train_epoch(self, order: Array, lr: float, on_batch: BatchCallback | None) -> tuple[float, float]:
        """One pass over ``order``; returns the mean loss and accuracy seen during the pass."""
        config, net = self.config, self.net
        params = net.parameters()
        n_batches = -(-len(order) // config.batch_size)
        loss_sum = correct = 0.0
        losses = self.batch_losses = np.empty(n_batches)  # each step's loss: the evidence of spikes (causes)
        for b, (indices, x, labels) in enumerate(self.batches.batches(order, self.optimizer.steps)):
            masks = None
            if config.dropout or config.input_dropout:
                masks = dropout_masks(net, len(indices), config.input_dropout, config.dropout, self.dropout_rng)
            scale = self.optimizer.grad_scale(lr)  # SGD's changes every step (see SGD)
            loss, grads, logits = self.objective.loss_and_gradients(
                net, x, labels, masks, self.workspace, scale, self.grad_beta, update=True
            )
            if not math.isfinite(loss):
                raise self.diverged(self.progress.epoch + 1, f"the loss became {loss} at batch {b + 1}")
            self.optimizer.step(params, grads, lr, prescaled=True, accumulated=self.accumulates)
            if config.max_norm is not None:
                apply_max_norm(net, config.max_norm)
            loss_sum += loss * len(indices)
            losses[b] = loss
            correct += int(np.count_nonzero(logits.argmax(axis=1) == labels))
            self.batch_loss = loss
            if on_batch:
                on_batch(b + 1, n_batches)
        self.optimizer.sync()  # at the same point in every run, checkpointed or not: resumes stay exact
        return loss_sum / len(order), correct / len(order)

    def _record(self, metrics: Metrics) -> None:
        """Append the epoch, track the best one, and decide whether to stop."""
        p, config = self.progress, self.config
        p.epoch += 1
        p.history.append(metrics)
        value = metrics.get(config.monitor)
        if value is not None and _improved(value, p.best_value, config.monitor, config.min_delta):
            p.best_epoch, p.best_value, p.stale_epochs = p.epoch, value, 0
            if config.patience is not None:
                self.best_params = [a.copy() for a in self.net.variables()]
        else:
            p.stale_epochs += 1
        if self._stopped_early():
            p.stop_reason = (
                f"early stopping: {config.monitor} did not improve by more than {config.min_delta:g} "
                f"for {config.patience} epoch{'' if config.patience == 1 else 's'}"
            )
        elif p.epoch >= config.epochs:
            p.stop_reason = "completed its one epoch" if config.epochs == 1 else f"completed all {config.epochs} epochs"

    def _stopped_early(self) -> bool:
        patience = self.config.patience
        return patience is not None and self.progress.stale_epochs >= patience

    def final_network(self) -> Network:
        """The weights to keep: the best epoch's under early stopping, else the last epoch's."""
        if self.best_params is not None:
            for current, best in zip(self.net.variables(), self.best_params):
                current[...] = best
        return self.net

    def state_arrays(self) -> dict[str, Array]:
        """Everything needed to continue exactly where training is, as plain arrays (``param<i>``: ``variables()``)."""
        arrays = {f"param{i}": p for i, p in enumerate(self.net.variables())}
        for name, values in self.optimizer.state().items():
            arrays.update({f"opt_{name}{i}": v for i, v in enumerate(values)})
        for i, p in enumerate(self.best_params or []):
            arrays[f"best{i}"] = p
        state = {
            "progress": vars(self.progress),
            "optimizer_steps": self.optimizer.steps,
            "shuffle_rng": self.shuffle_rng.bit_generator.state,
            "dropout_rng": self.dropout_rng.bit_generator.state,
        }
        arrays["state_json"] = np.array(json.dumps(state))
        return arrays

    def restore(self, arrays: dict[str, Array]) -> None:
        """Put back a ``state_arrays`` snapshot (taken with the same config)."""
        state: dict[str, Any] = json.loads(str(arrays["state_json"]))
        n, n_variables = len(self.net.parameters()), len(self.net.variables())
        for i, current in enumerate(self.net.variables()):
            current[...] = arrays[f"param{i}"]
        saved = {name: [arrays[f"opt_{name}{i}"] for i in range(n)] for name in self.optimizer.state()}
        load_state(self.optimizer, saved, state["optimizer_steps"])
        if "best0" in arrays:
            self.best_params = [arrays[f"best{i}"].copy() for i in range(n_variables)]
        self.progress = checked_progress(state["progress"], self.config.epochs)
        if self.progress.epoch < self.config.epochs and not self._stopped_early():
            self.progress.stop_reason = None  # a finished run trained on for more epochs (runs/extend.py)
            # Its warnings become those of a run started with the new epoch count: the same, but for a check
            # that depends on the epoch count (the shorter run's not-learning, checked at its end).
            self.progress.warnings = [w for w in self.progress.warnings
                                      if raised_in_a_run_of(w, self.config.epochs)]
        self.shuffle_rng.bit_generator.state = state["shuffle_rng"]
        self.dropout_rng.bit_generator.state = state["dropout_rng"]


def _improved(value: float, best: float | None, monitor: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value > best + min_delta if MONITORS[monitor] == "max" else value < best - min_delta


def fit(
    config: Config,
    data: Dataset,
    on_epoch: Callable[[Metrics], None] | None = None,
    on_batch: BatchCallback | None = None,
) -> Trainer:
    """Train a network as ``config`` says, start to finish; call ``on_epoch`` after each epoch."""
    trainer = Trainer(config, data)
    while not trainer.finished:
        metrics = trainer.run_epoch(on_batch)
        if on_epoch:
            on_epoch(metrics)
    return trainer
