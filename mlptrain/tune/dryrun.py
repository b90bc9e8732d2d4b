"""``fit --dry-run``: build the run as ``fit`` would, check the data and the init, take one step, keep nothing.

The trainer is the real one (same seed streams, probe batch and optimizer), so
the init table is the one the run would record and the step is the run's first
step on its first batch. A step that raises its batch's loss (a gradient step
small enough lowers it) or makes it non-finite is a warning with its cause, as
the checks' findings are. Nothing is written: the caller prints the result.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlptrain.config import Config
from mlptrain.data.loading import Dataset, gather_batch
from mlptrain.errors import DivergedError
from mlptrain.nn.network import forward, softmax_cross_entropy
from mlptrain.nn.schedules import lr_at
from mlptrain.train.advice import explain
from mlptrain.train.causes import diagnose_step, earlier_cause
from mlptrain.train.diagnostics import HealthWarning, LayerHealth
from mlptrain.train.trainer import Trainer, schedule_params


@dataclass
class DryRun:
    """The init check's rows and warnings, and the first step: its lr and the batch loss before and after."""

    rows: list[LayerHealth]
    warnings: list[dict[str, Any]]
    lr: float
    loss_before: float
    loss_after: float  # nan when the step diverged
    chance_loss: float  # log(classes): a constant guess
    seconds: float  # set-up, checks and step (data loading not included)
    inputs: dict[str, float]  # the data check's statistics of the training images

    @property
    def verdict(self) -> str:
        """One line: ready to train, or what to fix first."""
        step = (f"one step at lr {self.lr:g}: batch loss {self.loss_before:.4f} -> {self.loss_after:.4f} "
                f"(a constant guess: {self.chance_loss:.4f})")
        if self.warnings:
            codes = ", ".join(sorted({w["code"] for w in self.warnings}))
            causes = ", ".join(dict.fromkeys(w["cause"] for w in self.warnings if w.get("cause")))
            return (f"verdict: fix before training: {len(self.warnings)} warning(s) ({codes}; cause: {causes}); "
                    f"{step}")
        return f"verdict: ready to train: the data and init checks passed and the step lowered the loss; {step}"


def dry_run(config: Config, data: Dataset) -> DryRun:
    """Build the trainer for ``config`` (``config.init`` set), run the init check and one step on the first batch."""
    started = time.perf_counter()
    trainer = Trainer(config, data)
    rows = trainer.check_init()
    batch = trainer.shuffle_rng.permutation(trainer.split.train)[:config.batch_size]  # the run's first batch
    lr = lr_at(config.lr_schedule, 0, schedule_params(config))
    before = _batch_loss(trainer, batch)
    try:
        trainer.train_batch(batch, lr)
        after = _batch_loss(trainer, batch)
        if not math.isfinite(after):
            raise trainer.diverged(1, f"the loss became {after} after the first step")
    except DivergedError as exc:
        trainer.add_warning(HealthWarning("diverged", 1, None, f"{exc}", cause=exc.cause, evidence=exc.evidence))
        after = math.nan
    if after > before:
        trainer.add_warning(_rising(trainer, before, after))
    return DryRun(rows, trainer.progress.warnings, lr, before, after, math.log(data.n_classes),
                  time.perf_counter() - started, trainer.progress.inputs)


def _rising(trainer: Trainer, before: float, after: float) -> HealthWarning:
    """rising-loss: the first step raised its own batch's loss, with the cause the evidence points to."""
    found = HealthWarning("rising-loss", 1, None, f"the first step raised its batch's loss from {before:.4f} "
                                                  f"to {after:.4f}")
    diagnosis = diagnose_step(earlier_cause(trainer.progress.warnings), before, after, trainer.context())
    return explain(found, diagnosis, trainer.context())


def _batch_loss(trainer: Trainer, batch: np.ndarray) -> float:
    x = gather_batch(trainer.data.train_images, batch, trainer.net.dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, _ = softmax_cross_entropy(forward(trainer.net, x, train=True).logits, trainer.data.train_labels[batch])
    return loss
