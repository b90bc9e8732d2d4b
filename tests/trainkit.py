"""Training helpers shared by test modules: a run in one go against the same run restored mid-way."""

from __future__ import annotations

from mlptrain.config import Config
from mlptrain.data.loading import Dataset
from mlptrain.train.trainer import Trainer, fit


def whole_and_resumed(cfg: Config, data: Dataset, epochs_before: int) -> tuple[Trainer, Trainer]:
    """``cfg`` trained in one go, and again: a snapshot of its state after ``epochs_before`` epochs restored
    into a new Trainer that then runs to the end (what ``fit --resume`` does)."""
    whole = fit(cfg, data)
    first = Trainer(cfg, data)
    for _ in range(epochs_before):
        first.run_epoch()
    snapshot = {k: v.copy() for k, v in first.state_arrays().items()}
    resumed = Trainer(cfg, data)
    resumed.restore(snapshot)
    while not resumed.finished:
        resumed.run_epoch()
    return whole, resumed
