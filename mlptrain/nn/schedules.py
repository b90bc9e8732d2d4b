"""The table of learning-rate schedules: the lr of each epoch, from the config.

The lr is constant within an epoch and recorded in metrics.jsonl. An optional
linear warm-up comes first: over ``warmup_epochs`` epochs the lr climbs
``lr/(w+1), 2 lr/(w+1), …`` towards ``lr``; the schedule proper then starts at
``lr`` and counts its epochs from the end of the warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ScheduleParams:
    lr: float
    epochs: int  # total epochs, warm-up included
    warmup_epochs: int = 0
    lr_step: int = 10  # step: multiply by lr_gamma every lr_step epochs
    lr_gamma: float = 0.1  # step and exponential
    lr_min: float = 0.0  # cosine: the lr it decays to


def _constant(t: int, n: int, p: ScheduleParams) -> float:
    """lr, every epoch."""
    return p.lr


def _step(t: int, n: int, p: ScheduleParams) -> float:
    """lr * lr_gamma^(t // lr_step): lr times lr_gamma every lr_step epochs."""
    return p.lr * p.lr_gamma ** (t // p.lr_step)


def _exponential(t: int, n: int, p: ScheduleParams) -> float:
    """lr * lr_gamma^t: lr times lr_gamma every epoch."""
    return p.lr * p.lr_gamma**t


def _cosine(t: int, n: int, p: ScheduleParams) -> float:
    """lr_min + (lr - lr_min) (1 + cos(pi t / (n - 1))) / 2: from lr down to lr_min at the last epoch."""
    # Reaches lr_min at the last epoch (t = n - 1) rather than one epoch after it.
    progress = t / max(n - 1, 1)
    return p.lr_min + (p.lr - p.lr_min) * 0.5 * (1 + math.cos(math.pi * progress))


# name -> lr(t, n, params) with t the 0-based epoch after warm-up and n the epochs after warm-up
SCHEDULES: dict[str, Callable[[int, int, ScheduleParams], float]] = {
    "constant": _constant,
    "step": _step,
    "cosine": _cosine,
    "exponential": _exponential,
}


def lr_at(schedule: str, epoch: int, params: ScheduleParams) -> float:
    """The learning rate of 0-based ``epoch``."""
    w = params.warmup_epochs
    if epoch < w:
        return params.lr * (epoch + 1) / (w + 1)
    return SCHEDULES[schedule](epoch - w, params.epochs - w, params)
