"""Which cause explains a run's warnings: the rules, their thresholds, and the evidence they read.

One diagnosis per check (the data check, the init check, each epoch, a
divergence, the dry run's step), shared by every warning of that check. The
rules go by the timeline:

- the data check's findings are the ``inputs``' own;
- at the init check, ``init-scale`` when the same check passes at the
  family's recommended init, else ``inputs`` when the data check flagged them,
  else ``architecture``;
- after it, a cause found at the init check (or in the inputs) stays the cause
  of what follows; after a clean init check, ``weight-decay`` when the decay
  shrank the weights, ``learning-rate`` when the steps blew the weights or the
  loss up (or barely moved anything), and ``unknown`` when none of it holds.

The thresholds were measured on MNIST (docs/diagnostics.md, "The evidence"):
healthy runs of every activation family and optimizer at their usual lr, and
the same nets at 10-200x that lr.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlptrain.train.advice import Context, Diagnosis

# A layer's weight RMS growing this much within one epoch means the steps were too large. Healthy runs grew at
# most 2.7x in an epoch (logistic's output layer in epoch 1 on MNIST; ReLU, tanh, ELU, softplus, identity and
# Adam 1.0-1.6x; the tests' small data sets up to 2.1x); the same nets at 10-200x their lr grew 8.6x (784-32-10
# at lr 1) to 5700x (at lr 10) in their first epoch.
GROWTH_LIMIT = 5.0
# A batch loss this many times log(classes), a constant guess's loss: a net that passed the init check starts
# near that loss (healthy maxima were 1.01-1.18x, at the first batches), so it got there by overshooting (the
# runs at 10-200x their lr reached 1.5-6250x; 784-32-10 at lr 1 reached 1.5x in epoch 1 and 2.6x in epoch 2).
LOSS_LIMIT = 2.0
# Every layer's weights moved less than this share of their RMS over the last epoch: nothing moves. Healthy
# epochs moved their most-moving layer by 0.08-0.72 on MNIST (430 steps an epoch, epochs 1-5) and 0.16-0.56 on
# the tests' 9-step data sets; 784-32-10 at lr 1e-5 moved it 0.006, at lr 1e-4 0.04 (slow, but learning).
STALL_RATIO = 0.01
# Weight decay shrank a layer's weight RMS this far below its init: the gradients alone do not shrink weights.
DECAY_SHRINK = 2.0
# lr x weight decay at which one decay step alone carries a weight past zero.
DECAY_OVERSHOOT = 1.0
INIT_CAUSES = ("init-scale", "architecture", "inputs")
# A spike: a step whose loss is SPIKE_FACTOR x the median of the SPIKE_WINDOW steps before it, and above
# SPIKE_FLOOR x log(classes) (without the floor, a healthy net's small late losses made 7-12 "spikes" an epoch
# out of hard batches). Recorded for inspect, not a rule of its own: a net whose units died has a flat loss.
SPIKE_FACTOR = 3.0
SPIKE_WINDOW = 20
SPIKE_FLOOR = 0.5

# What decides each cause, with the thresholds above (docs/diagnostics.md's table of causes is generated from it).
RULES = {
    "init-scale": "the init check found the signal vanishing or exploding, or units dead or saturated, and the "
                  "same check passes at the family's recommended init (drawn for the same layer sizes)",
    "architecture": "the init check fails, and at the family's recommended init it still fails (and the data "
                    "check flagged nothing)",
    "learning-rate": f"after a clean init check: a layer's weight RMS grew {GROWTH_LIMIT:g}x or more in one "
                     f"epoch, a batch loss reached {LOSS_LIMIT:g}x a constant guess's, the first step raised the "
                     "batch loss (dry run), or the loss or weights became NaN; too small: every layer's weights "
                     f"moved under {STALL_RATIO:.0%} of their RMS in the last epoch",
    "weight-decay": f"weight decay is on and a layer's weight RMS fell {DECAY_SHRINK:g}x or more below its init "
                    f"(gradients alone do not shrink weights), or lr x weight decay is {DECAY_OVERSHOOT:g} or more",
    "inputs": "the data check flagged the training images (inverted-inputs, faint-inputs, constant-inputs); "
              "then also the init check's findings when the recommended init fails too",
    "unknown": "none of the above: a clean init check, usual inputs, and steps that neither explode nor stall",
}

def diagnose_inputs(found: str, stats: dict[str, float]) -> Diagnosis:
    """The data check's finding ``found`` (a code) with the input statistics that showed it."""
    return Diagnosis("inputs", {"found": found, **stats})


def diagnose_init(found: list[str], gain: float, recommended: tuple[str, float, list[str]],
                  hidden_layers: int, inputs: Diagnosis | None) -> Diagnosis:
    """The init check's cause: ``init-scale`` when the recommended init passes the same check, else the inputs
    (when flagged), else the architecture. ``found``: the codes the init check raised; ``recommended``: the
    recommended init's name, gain and codes."""
    name, recommended_gain, recommended_codes = recommended
    evidence: dict[str, Any] = {"found": ", ".join(dict.fromkeys(found)), "gain": gain,
                                "recommended": name, "recommended_gain": recommended_gain}
    if not recommended_codes:
        return Diagnosis("init-scale", evidence)
    if inputs is not None:
        return inputs
    return Diagnosis("architecture", evidence | {"recommended_found": ", ".join(recommended_codes),
                                                 "hidden_layers": hidden_layers})


@dataclass(frozen=True)
class EpochEvidence:
    """What one epoch's metrics say about the steps: the cheap numbers the rules read."""

    epoch: int
    growth: float  # the largest layer's weight RMS over its RMS one epoch before (the init, for epoch 1)
    growth_layer: str
    shrink: float  # the largest layer's init weight RMS over its RMS now
    shrink_layer: str
    update_ratio: float  # the largest layer's update-to-weight ratio over the epoch
    loss_max: float  # the largest batch loss of the epoch (nan: not recorded)
    train_loss: float


def epoch_evidence(history: list[dict[str, Any]], init_rows: list[dict[str, Any]]) -> list[EpochEvidence]:
    """The evidence of every epoch in ``history`` (metrics dicts with their ``layers``)."""
    found, before = [], init_rows
    for m in history:
        rows = m.get("layers") or []
        growth = [(_ratio(r["weight_rms"], b["weight_rms"]), r["layer"]) for r, b in zip(rows, before)]
        shrink = [(_ratio(b["weight_rms"], r["weight_rms"]), r["layer"]) for r, b in zip(rows, init_rows)]
        (g, g_layer), (s, s_layer) = max(growth, default=(1.0, "")), max(shrink, default=(1.0, ""))
        found.append(EpochEvidence(int(m["epoch"]), g, g_layer, s, s_layer,
                                   max((r.get("update_ratio", 0.0) for r in rows), default=0.0),
                                   float(m.get("loss_max", math.nan)), float(m["train_loss"])))
        before = rows or before
    return found


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (math.inf if a > 0 else 1.0)


def diagnose_epoch(earlier: Diagnosis | None, history: list[EpochEvidence], init_gain: float,
                   n_classes: int, ctx: Context) -> Diagnosis:
    """The cause of warnings raised after an epoch. ``earlier``: the data or init check's cause, which stays."""
    if earlier is not None:
        return earlier
    return (_decay(history, ctx) or _too_large(history, n_classes, ctx) or _too_small(history, ctx)
            or _unknown(history, init_gain))


def _decay(history: list[EpochEvidence], ctx: Context) -> Diagnosis | None:
    shrunk = next((e for e in history if e.shrink >= DECAY_SHRINK), None)
    if not ctx.weight_decay or shrunk is None:
        return None
    return Diagnosis("weight-decay", {"layer": shrunk.shrink_layer, "weight_shrink": shrunk.shrink,
                                      "epoch": shrunk.epoch, "loss": shrunk.train_loss,
                                      "decay_per_step": (ctx.lr or 0.0) * ctx.weight_decay})


def _too_large(history: list[EpochEvidence], n_classes: int, ctx: Context) -> Diagnosis | None:
    chance = math.log(n_classes)
    grown = next((e for e in history if e.growth >= GROWTH_LIMIT), None)
    spiked = next((e for e in history if e.loss_max >= LOSS_LIMIT * chance), None)
    if grown is None and spiked is None:
        return None
    evidence: dict[str, Any] = {"direction": "too large", "lr": ctx.lr}
    if grown is not None:
        evidence |= {"epoch": grown.epoch, "layer": grown.growth_layer, "weight_growth": grown.growth,
                     "growth_limit": GROWTH_LIMIT}
    if spiked is not None:
        evidence |= {"loss_epoch": spiked.epoch, "loss_max": spiked.loss_max, "chance_loss": chance}
    return Diagnosis("learning-rate", evidence)


def _too_small(history: list[EpochEvidence], ctx: Context) -> Diagnosis | None:
    last = history[-1] if history else None
    if last is None or last.update_ratio >= STALL_RATIO:
        return None
    return Diagnosis("learning-rate", {"direction": "too small", "lr": ctx.lr, "epoch": last.epoch,
                                       "update_ratio": last.update_ratio, "healthy_from": STALL_RATIO})


def _unknown(history: list[EpochEvidence], init_gain: float) -> Diagnosis:
    return Diagnosis("unknown", {
        "init_gain": init_gain, "weight_growth": max((e.growth for e in history), default=1.0),
        "loss_max": max((e.loss_max for e in history if not math.isnan(e.loss_max)), default=math.nan),
        "update_ratio": max((e.update_ratio for e in history), default=0.0),
    })


def diagnose_divergence(earlier: Diagnosis | None, what: str, ctx: Context) -> Diagnosis:
    """The cause of a loss or weights gone NaN/inf (``what``): the step size, unless the init check found
    the signal exploding or a decay step alone overshoots zero."""
    if earlier is not None and earlier.cause == "init-scale" and earlier.evidence["found"].startswith("exploding"):
        return earlier
    decay = (ctx.lr or 0.0) * ctx.weight_decay
    if decay >= DECAY_OVERSHOOT:
        return Diagnosis("weight-decay", {"decay_per_step": decay})
    return Diagnosis("learning-rate", {"direction": "too large", "lr": ctx.lr, "diverged": what})


def diagnose_step(earlier: Diagnosis | None, before: float, after: float, ctx: Context) -> Diagnosis:
    """The cause of one training step that raised its batch's loss (``fit --dry-run``)."""
    if earlier is not None:
        return earlier
    return Diagnosis("learning-rate", {"direction": "too large", "lr": ctx.lr, "loss_before": before,
                                       "loss_after": after})


def earlier_cause(warnings: list[dict[str, Any]]) -> Diagnosis | None:
    """The cause found before training, from recorded warnings (dicts): the init check's, else the data check's."""
    before = [w for w in warnings if w["epoch"] == 0 and w.get("cause") in INIT_CAUSES]
    for w in sorted(before, key=lambda w: w["cause"] == "inputs"):
        # Infinities and NaN are stored as text (advice.rounded): numbers again for the advice to format.
        evidence = {k: float(v) if v in ("inf", "-inf", "nan") else v for k, v in (w.get("evidence") or {}).items()}
        return Diagnosis(w["cause"], evidence)
    return None


def diagnose_run_epoch(warnings: list[dict[str, Any]], history: list[dict[str, Any]],
                       init_rows: list[dict[str, Any]], n_classes: int, ctx: Context) -> Diagnosis:
    """``diagnose_epoch`` from what a run records: its warnings so far, its metrics and the init check's rows."""
    init_gain = math.prod(row["gain"] for row in init_rows)
    return diagnose_epoch(earlier_cause(warnings), epoch_evidence(history, init_rows), init_gain, n_classes, ctx)


def loss_stats(losses: np.ndarray, n_classes: int) -> dict[str, float | int]:
    """An epoch's batch losses ``(steps,)`` summed up: the largest, and the spikes (steps whose loss exceeds
    SPIKE_FACTOR x the median of the SPIKE_WINDOW steps before them, and SPIKE_FLOOR x log(n_classes))."""
    if len(losses) == 0:
        return {"loss_max": math.nan, "loss_spikes": 0}
    spikes = 0
    if len(losses) > SPIKE_WINDOW:
        windows = np.lib.stride_tricks.sliding_window_view(losses[:-1], SPIKE_WINDOW)
        later = losses[SPIKE_WINDOW:]
        high = (later > SPIKE_FACTOR * np.median(windows, axis=1)) & (later > SPIKE_FLOOR * math.log(n_classes))
        spikes = int(np.count_nonzero(high))
    return {"loss_max": float(losses.max()), "loss_spikes": spikes}
