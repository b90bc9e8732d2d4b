"""The learning-rate range test (Smith 2017, "Cyclical learning rates"; fastai's ``lr_find``).

Training starts from the config's initial net and the lr grows exponentially
from ``lr_min`` to ``lr_max``, one step at a time, through the trainer's own
step (so every optimizer of the table, with the config's momentum, decay,
dropout and max-norm). The loss is smoothed exponentially with bias
correction; the test stops when the smoothed loss exceeds ``stop_factor``
times its minimum or the loss is no longer finite. Two suggestions: the lr of
the steepest descent of the smoothed loss (against log lr), and the lr of its
minimum divided by 10. The same config and seed give the same curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from mlptrain.config import Config
from mlptrain.data.loading import Dataset
from mlptrain.errors import ConfigError, DivergedError
from mlptrain.train.trainer import Trainer

StepCallback = Callable[[int, int], None]  # (steps done, steps planned)


@dataclass
class LRFind:
    """The recorded steps (lr, raw batch loss, smoothed loss) and why the test stopped."""

    lr_min: float
    lr_max: float
    steps: int  # planned
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stop_reason: str = ""

    def steepest(self) -> float | None:
        """The lr where the smoothed loss falls fastest against log lr, before its minimum."""
        end = int(np.argmin(self.smoothed)) + 1 if self.smoothed else 0
        if end < 3:
            return None
        slopes = np.gradient(np.array(self.smoothed[:end]), np.log(self.lrs[:end]))
        return float(self.lrs[int(np.argmin(slopes))])

    def minimum_over_10(self) -> float | None:
        """The lr of the smoothed loss's minimum, over 10."""
        return float(self.lrs[int(np.argmin(self.smoothed))] / 10) if self.smoothed else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "lr_min": self.lr_min, "lr_max": self.lr_max, "steps_planned": self.steps, "steps_run": len(self.lrs),
            "stop_reason": self.stop_reason,
            "suggestion": {"steepest": self.steepest(), "minimum_over_10": self.minimum_over_10()},
            "points": [{"step": i + 1, "lr": lr, "loss": loss, "smoothed": smooth}
                       for i, (lr, loss, smooth) in enumerate(zip(self.lrs, self.losses, self.smoothed))],
        }


def check_range(lr_min: float, lr_max: float, steps: int, smoothing: float, stop_factor: float) -> None:
    """ConfigError unless the test's settings make sense together."""
    if not 0 < lr_min < lr_max < math.inf:  # comparisons with NaN are False: refused too
        raise ConfigError(f"--start-lr {lr_min:g} must be positive and below --end-lr {lr_max:g}, both finite")
    if steps < 2:
        raise ConfigError(f"--steps {steps}: the test needs at least 2 steps")
    if not 0 <= smoothing < 1:
        raise ConfigError(f"--smoothing {smoothing:g} must be in [0, 1)")
    if not 1 < stop_factor < math.inf:
        raise ConfigError(f"--stop-factor {stop_factor:g} must be above 1 and finite")


def lr_find(config: Config, data: Dataset, lr_min: float = 1e-7, lr_max: float = 10.0, steps: int = 300,
            smoothing: float = 0.98, stop_factor: float = 4.0, on_step: StepCallback | None = None) -> LRFind:
    """Run the range test on ``config``'s net (``config.init`` set; its lr and schedule are not used)."""
    check_range(lr_min, lr_max, steps, smoothing, stop_factor)
    trainer = Trainer(config, data)
    result = LRFind(lr_min, lr_max, steps)
    average, best = 0.0, math.inf
    for k, batch in zip(range(steps), _batches(trainer)):
        lr = lr_min * (lr_max / lr_min) ** (k / (steps - 1))
        try:
            loss = trainer.train_batch(batch, lr)
        except DivergedError:
            result.stop_reason = f"the loss became NaN or infinite at lr {lr:.3g} (step {k + 1})"
            break
        average = smoothing * average + (1 - smoothing) * loss
        smooth = average / (1 - smoothing ** (k + 1))  # bias correction: the average starts at 0
        result.lrs.append(lr)
        result.losses.append(loss)
        result.smoothed.append(smooth)
        if on_step:
            on_step(k + 1, steps)
        best = min(best, smooth)
        if smooth > stop_factor * best:
            result.stop_reason = (f"the smoothed loss {smooth:.3g} exceeded {stop_factor:g}x its minimum "
                                  f"{best:.3g} at lr {lr:.3g} (step {k + 1})")
            break
    result.stop_reason = result.stop_reason or f"reached --end-lr {lr_max:g} after {steps} steps"
    return result


def _batches(trainer: Trainer) -> Iterator[np.ndarray]:
    """Minibatches of the training split, epoch after epoch, shuffled by the run's own stream."""
    size = trainer.config.batch_size
    while True:
        order = trainer.shuffle_rng.permutation(trainer.split.train)
        # Full batches only, for the same noise at every step (a split smaller than a batch is one batch).
        for start in range(0, max(len(order) - size, 0) + 1, size):
            yield order[start:start + size]
