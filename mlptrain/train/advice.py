"""The vocabulary of causes: what each means, how it is shown with its evidence, and the advice it implies.

A warning's message is what was measured (the number and the threshold it
crossed), then its cause with the evidence that decided it, then the advice
for that cause (``explain``). The advice follows from the cause and the run's
context alone (activation family, layer sizes, lr, decay), never from the
warning's code, so two warnings of one cause never point different ways.
Which cause a warning gets is decided in ``causes`` from the measurements.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.nn.initializers import DEFAULT_INIT_FOR_FAMILY, INITIALIZERS

Evidence = dict[str, Any]  # the measured numbers (and the names of findings) that decided a cause
LR_FIND = "mlptrain lr-find --out DIR"  # the range test, for advice about the learning rate


def recommended_init(family: str) -> str:
    """The init the advice recommends for an activation family: the one the default would have chosen."""
    return DEFAULT_INIT_FOR_FAMILY[family]


@dataclass(frozen=True)
class Context:
    """What the advice depends on besides the cause: the run's activation, layer sizes, decay and lr."""

    activation: str
    sizes: tuple[int, ...]  # layer widths, input first
    weight_decay: float = 0.0
    lr: float | None = None
    bias_init: float = 0.0

    @property
    def family(self) -> str:
        return ACTIVATIONS[self.activation].family


@dataclass
class HealthWarning:
    """A coded warning (``WARNING_CODES``): what was measured, where, its cause and what to try."""

    code: str
    epoch: int  # 0: the data and init checks before training
    layer: str | None
    message: str
    cleared: int | None = None  # the first later epoch at which the condition no longer held
    cause: str | None = None  # from advice.CAUSES, set with the advice by advice.explain
    evidence: Evidence = field(default_factory=dict)  # the measured numbers that decided the cause

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Diagnosis:
    """A cause from ``CAUSES`` and the evidence that decided it."""

    cause: str
    evidence: Evidence = field(default_factory=dict)

    def describe(self) -> str:
        """``cause: learning-rate (what decided it)``."""
        return f"cause: {self.cause} ({CAUSES[self.cause].shows(self.evidence)})"


@dataclass(frozen=True)
class Cause:
    """One row of the vocabulary: its meaning, how its evidence reads, what to do (the rules that decide it
    are ``causes.RULES``)."""

    name: str
    meaning: str
    shows: Callable[[Evidence], str]
    advice: Callable[[Context, Evidence], str]


def init_fix(ctx: Context) -> str:
    """The init that suits the family, with the first layer's range spelled out for --init-range users."""
    name = recommended_init(ctx.family)
    fan_in, fan_out = ctx.sizes[0], ctx.sizes[1]
    r = INITIALIZERS[name].std(fan_in, fan_out, None, None) * math.sqrt(3.0)
    # Negative biases switch ReLU units off and push logistic ones to a bound whatever the weights.
    bias = ", with --bias-init 0" if ctx.bias_init < 0 else ""
    return f"use --init {name}, or an --init-range near {r:.2g} for {fan_in} inputs{bias}"


def _or_relu(ctx: Context) -> str:
    """The switch to ReLU units (with their own init), unless the run has ReLU-family units already."""
    return "" if ctx.family == "relu" else f", or --activation relu with --init {recommended_init('relu')}"


def _init_scale_shows(ev: Evidence) -> str:
    first, *others = ev["found"].split(", ")
    gain = ev["gain"]
    size = {"vanishing-signal": f", {1 / max(gain, 1e-30):.2g}x", "exploding-signal": f", {gain:.2g}x"}
    also = f" (and {', '.join(others)})" if others else ""
    return (f"{first}{size.get(first, '')} at the init check{also}; at {ev['recommended']} the check passes, "
            f"gain {ev['recommended_gain']:.2g}")


def _architecture_shows(ev: Evidence) -> str:
    return (f"{ev['found']} at the init check; at {ev['recommended']}, the recommended init for these units, "
            f"it still finds {ev['recommended_found']} through {ev['hidden_layers']} hidden layers")


def _architecture_advice(ctx: Context, ev: Evidence) -> str:
    layers = len(ctx.sizes) - 2
    fewer = f"use fewer than {layers} hidden layers" if layers > 1 else "use other units"
    # Findings the recommended init does not share are the init's own: fix it too.
    init = set(ev["found"].split(", ")) - set(ev["recommended_found"].split(", "))
    first = f"{init_fix(ctx)}, and " if init else ""
    return f"{first}{fewer}{_or_relu(ctx)}"


def _layer(name: str) -> str:
    return "the output layer's" if name == "logits" else f"{name}'s"


def num(x: float) -> str:
    """A measured number to read: 3 significant digits, without an exponent between 100 and a million."""
    return f"{x:.0f}" if 100 <= abs(x) < 1e6 else f"{x:.3g}"


def _at_lr(lr: float | None) -> str:
    return "" if lr is None else f" at lr {lr:g}"


def _lr_shows(ev: Evidence) -> str:
    if ev["direction"] == "too small":
        return (f"steps too small: in epoch {ev['epoch']} the weights moved {ev['update_ratio']:.2g} of their RMS "
                f"at most (healthy: {ev['healthy_from']:g} or more){_at_lr(ev.get('lr'))}")
    seen = []
    if "weight_growth" in ev:
        seen.append(f"{_layer(ev['layer'])} weights grew {num(ev['weight_growth'])}x in epoch {ev['epoch']} "
                    f"(healthy: under {ev['growth_limit']:g}x)")
    if "loss_max" in ev:
        seen.append(f"a batch loss reached {num(ev['loss_max'])} in epoch {ev['loss_epoch']} "
                    f"({num(ev['loss_max'] / ev['chance_loss'])}x a constant guess's {ev['chance_loss']:.3g})")
    if "loss_after" in ev:
        seen.append(f"one step raised the batch loss {ev['loss_before']:.4f} -> {ev['loss_after']:.4f}")
    if "diverged" in ev:
        seen.append(ev["diverged"])
    return f"steps too large{_at_lr(ev.get('lr'))}: " + "; ".join(seen)


def _lr_advice(ctx: Context, ev: Evidence) -> str:
    lr, small = ev.get("lr") or ctx.lr, ev["direction"] == "too small"
    to = "" if lr is None else f", to {lr * 10 if small else lr / 10:g}"
    if small:
        return f"raise --lr (e.g. 10x{to}, or what lr-find suggests: {LR_FIND})"
    return f"lower --lr (e.g. 10x{to}, or what lr-find suggests: {LR_FIND}), or add a --warmup-epochs or --max-norm"


def _decay_shows(ev: Evidence) -> str:
    if "weight_shrink" not in ev:
        return f"lr x weight decay = {ev['decay_per_step']:.3g}: each step's decay overshoots zero"
    return (f"{_layer(ev['layer'])} weights shrank {ev['weight_shrink']:.3g}x below their init by epoch {ev['epoch']} "
            f"while the training loss stayed at {ev['loss']:.3f}; lr x weight decay = {ev['decay_per_step']:.3g} "
            "of every weight each step")


def _decay_advice(ctx: Context, ev: Evidence) -> str:
    return f"lower --weight-decay (e.g. 100x, to {ctx.weight_decay / 100:g}), or leave it out"


# The data check's findings: what each says about the inputs, and what to do about it.
INPUT_FIXES = {
    "inverted-inputs": "invert the images, x -> 1 - x (dark ink on a light background; the nets here learn "
                       "from MNIST's light ink on black): mlptrain has no option for it, so write the IDX files "
                       "with 255 - pixel (docs/diagnostics.md shows how)",
    "constant-inputs": "check the images: most pixels are the same in every training image, so they carry "
                       "nothing to learn from",
    "faint-inputs": "rescale the images to use the whole 0-255 range (e.g. pixel * 255 / brightest) before "
                    "writing the IDX files: the init assumes inputs of MNIST's spread",
}


def _inputs_shows(ev: Evidence) -> str:
    return (f"the data check found {ev['found']}: pixel mean {ev['mean']:.2f}, std {ev['std']:.2f}, "
            f"border {ev['border']:.2f}, brightest {ev['brightest']:.2f}, constant pixels {ev['constant']:.0%}")


def _inputs_advice(ctx: Context, ev: Evidence) -> str:
    return INPUT_FIXES[ev["found"]]


def _unknown_shows(ev: Evidence) -> str:
    return (f"the init check passed (gain {ev['init_gain']:.2g}), the inputs look usual, and the steps neither "
            f"explode nor stall: the weights grew at most {ev['weight_growth']:.2f}x in an epoch, "
            f"largest batch loss {ev['loss_max']:.3g}, update/weight ratio up to {ev['update_ratio']:.2g} "
            "per epoch")


def _unknown_advice(ctx: Context, ev: Evidence) -> str:
    return ("the evidence does not decide: check that the labels belong to the images, then try a 10x smaller "
            f"and a 10x larger --lr (or what lr-find suggests: {LR_FIND})")


CAUSES: dict[str, Cause] = {c.name: c for c in (
    Cause("init-scale", "the initial weights are too small or too large for these units", _init_scale_shows,
          lambda ctx, ev: init_fix(ctx)),
    Cause("architecture", "depth and activation: the recommended init cannot keep the signal either",
          _architecture_shows, _architecture_advice),
    Cause("learning-rate", "the steps are too large (or too small) for this net", _lr_shows, _lr_advice),
    Cause("weight-decay", "the decay pulls the weights to zero faster than the gradients hold them up",
          _decay_shows, _decay_advice),
    Cause("inputs", "the data: dark-on-light images, a spread far from what the init assumes, or constant pixels",
          _inputs_shows, _inputs_advice),
    Cause("unknown", "the evidence does not decide", _unknown_shows, _unknown_advice),
)}

# Every warning code, in the order the docs use (each is described in docs/diagnostics.md's table).
WARNING_CODES = (
    "vanishing-signal", "exploding-signal", "dead-units", "saturated-units", "vanishing-gradients",
    "input-ignored", "collapsed-predictions", "not-learning", "shrinking-weights", "diverged",
    "rising-loss", "inverted-inputs", "faint-inputs", "constant-inputs",
)


def advise(diagnosis: Diagnosis, ctx: Context) -> str:
    """The cause with its evidence, then what to do: ``cause: X (evidence): advice``."""
    return f"{diagnosis.describe()}: {CAUSES[diagnosis.cause].advice(ctx, diagnosis.evidence)}"


def explain(warning: HealthWarning, diagnosis: Diagnosis, ctx: Context) -> HealthWarning:
    """``warning`` (its message: what was measured) with its cause, the evidence and the advice appended."""
    return replace(warning, message=f"{warning.message}; {advise(diagnosis, ctx)}", cause=diagnosis.cause,
                   evidence=rounded(diagnosis.evidence))


def rounded(evidence: Evidence) -> Evidence:
    """The evidence with its floats at 4 significant digits (numbers to read, not to recompute from), and
    infinities and NaN as text, which strict JSON readers accept."""
    return {k: (float(f"{v:.4g}") if math.isfinite(v) else str(v)) if isinstance(v, float) else v
            for k, v in evidence.items()}
