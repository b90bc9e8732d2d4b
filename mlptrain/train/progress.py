"""The plain-data part of the training state: what a checkpoint stores as JSON, and its check on reading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Metrics = dict[str, float]


@dataclass
class Progress:
    """The plain-data part of the training state (JSON in checkpoints)."""

    epoch: int = 0  # epochs completed
    history: list[Metrics] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stale_epochs: int = 0  # epochs since the monitored metric last improved
    stop_reason: str | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)  # HealthWarning.as_dict(), first sightings
    init_health: list[dict[str, float]] = field(default_factory=list)
    inputs: dict[str, float] = field(default_factory=dict)  # the data check's statistics of the training images


def checked_progress(saved: dict[str, Any], epochs: int) -> Progress:
    """The saved Progress, refused (ValueError) unless every field has a type and range that fits."""
    progress = Progress(**saved)
    ok = (
        type(progress.epoch) is int and 0 <= progress.epoch <= epochs
        and isinstance(progress.history, list) and len(progress.history) == progress.epoch
        and all(isinstance(m, dict) for m in progress.history)
        and (progress.best_epoch is None or type(progress.best_epoch) is int)
        and (progress.best_value is None or isinstance(progress.best_value, (int, float)))
        and type(progress.stale_epochs) is int
        and (progress.stop_reason is None or isinstance(progress.stop_reason, str))
        and isinstance(progress.warnings, list) and isinstance(progress.init_health, list)
        and isinstance(progress.inputs, dict)
    )
    if not ok:
        raise ValueError("its saved training state has fields of the wrong type or range")
    return progress
