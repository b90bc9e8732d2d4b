"""What to change, for every warning code: one table that knows the activation's family and the cause.

A warning's message is what was measured (the number and the threshold it
crossed) followed by the advice from here, so two warnings of one run never
point different ways. The advice follows the cause: when the init check found
the signal vanishing or exploding, the init scale is the cause of what comes
after it (dead units, a loss stuck at log C, one class predicted for every
image, shrinking weights, a divergence), and those warnings say so first
instead of suggesting the learning rate or an activation the run already uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.nn.initializers import DEFAULT_INIT_FOR_FAMILY, INITIALIZERS

SCALE_CODES = ("vanishing-signal", "exploding-signal")  # the init-scale findings


@dataclass(frozen=True)
class Context:
    """What the advice depends on: the run's activation and first layer, its decay, and the cause found."""

    activation: str
    sizes: tuple[int, ...]  # layer widths, input first
    weight_decay: float = 0.0
    cause: str | None = None  # "vanishing-signal ×1.2e+04 at the init check", or None

    @property
    def family(self) -> str:
        return ACTIVATIONS[self.activation].family


def init_fix(ctx: Context) -> str:
    """The init that suits the family, with the first layer's range spelled out for --init-range users."""
    name = DEFAULT_INIT_FOR_FAMILY[ctx.family]  # the advice recommends what the default would have chosen
    fan_in, fan_out = ctx.sizes[0], ctx.sizes[1]
    r = INITIALIZERS[name].std(fan_in, fan_out, None, None) * math.sqrt(3.0)
    return f"use --init {name}, or an --init-range near {r:.2g} for {fan_in} inputs"


def _other_activations(ctx: Context, candidates: tuple[str, ...]) -> str:
    """``--activation a or b`` from ``candidates`` without the run's own activation."""
    left = [name for name in candidates if name != ctx.activation]
    return f"--activation {' or '.join(left)}"


def _scale_first(ctx: Context, otherwise: str) -> str:
    """With an init-scale cause: the init fix first; without: ``otherwise``."""
    if ctx.cause is None:
        return otherwise
    return f"the cause is the init scale ({ctx.cause}): {init_fix(ctx)}"


def _dead_units(ctx: Context) -> str:
    fixes = ["lower --lr (large steps push units negative for good)",
             _other_activations(ctx, ("leaky-relu", "elu")), "a small positive --bias-init such as 0.01"]
    return _scale_first(ctx, ", ".join(fixes[:-1]) + f", or {fixes[-1]}")


def _or_relu(ctx: Context) -> str:
    """The switch to ReLU units (with their own init), unless the run has ReLU-family units already."""
    return "" if ctx.family == "relu" else f", or --activation relu with --init {DEFAULT_INIT_FOR_FAMILY['relu']}"


def _saturated_units(ctx: Context) -> str:
    return f"use a smaller init ({init_fix(ctx)}){_or_relu(ctx)}"


def _vanishing_gradients(ctx: Context) -> str:
    if ctx.family == "saturating":
        # A logistic unit passes at most 1/4 of the gradient (tanh 1): depth itself starves the first layers.
        return (f"{ctx.activation} units shrink the gradient at every layer even at their best init: "
                f"{init_fix(ctx)}, use fewer layers{_or_relu(ctx)}")
    return _scale_first(ctx, f"{init_fix(ctx)}, or use fewer layers")


def _stuck(what: str) -> Callable[[Context], str]:
    """not-learning, collapsed-predictions, input-ignored: the init scale first, then the step size."""
    def advise(ctx: Context) -> str:
        decay = f"; --weight-decay {ctx.weight_decay:g} pulls idle weights to zero" if ctx.weight_decay else ""
        return _scale_first(ctx, f"{what}; check the init scale ({init_fix(ctx)}) and --lr{decay}")
    return advise


def _shrinking_weights(ctx: Context) -> str:
    decay = (f"--weight-decay {ctx.weight_decay:g} shrinks them a little every step while the loss gives them "
             "nothing back, so lower it" if ctx.weight_decay else "nothing holds them up")
    fix = f"the cause is the init scale ({ctx.cause}): {init_fix(ctx)}" if ctx.cause else f"{init_fix(ctx)}"
    return f"{fix}; {decay}"


def _diverged(ctx: Context) -> str:
    if ctx.cause is not None and ctx.cause.startswith("exploding-signal"):
        return f"the cause is the init scale ({ctx.cause}): {init_fix(ctx)}"
    return "lower --lr (e.g. by 10x), or add --max-norm or a --warmup-epochs"


ADVICE: dict[str, Callable[[Context], str]] = {
    "vanishing-signal": init_fix,
    "exploding-signal": init_fix,
    "dead-units": _dead_units,
    "saturated-units": _saturated_units,
    "vanishing-gradients": _vanishing_gradients,
    "input-ignored": _stuck("the units may have died (see dead-units) or the weights shrunk (see "
                            "shrinking-weights)"),
    "collapsed-predictions": _stuck("the net predicts the class frequencies, not the images"),
    "not-learning": _stuck("the net has learned only the class frequencies so far"),
    "shrinking-weights": _shrinking_weights,
    "diverged": _diverged,
}


def advise(code: str, ctx: Context) -> str:
    """The advice for warning ``code`` in this run."""
    return ADVICE[code](ctx)


def describe_cause(code: str, total_gain: float, epoch: int) -> str:
    """How a scale warning is named as the cause in other warnings' advice."""
    factor = 1 / max(total_gain, 1e-30) if code == "vanishing-signal" else total_gain
    when = "at the init check" if epoch == 0 else f"in epoch {epoch}"
    return f"{code}, {factor:.2g}x {when}"
