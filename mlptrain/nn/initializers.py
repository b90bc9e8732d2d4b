"""The table of weight initializers: name -> how to draw a ``(fan_in, fan_out)`` matrix.

All the named schemes are one variance-scaling rule (as in JAX): draw weights
with variance ``scale / n`` where ``n`` is the fan-in, the fan-out or their mean,
from a normal or a uniform distribution. ``uniform`` and ``normal`` are the
plain fixed-scale schemes of the original experiment: U(-r, r) with
``init_range = r`` and N(0, s^2) with ``init_std = s``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from mlptrain.errors import ConfigError


@dataclass(frozen=True)
class Initializer:
    """One row of the table.

    ``parameter`` names the config key this scheme needs (``init_range`` or
    ``init_std``), or None for the variance-scaling schemes, whose scale
    follows from the layer's fan-in/fan-out.
    """

    name: str
    distribution: str  # "uniform" or "normal"
    scale: float = 1.0
    mode: str = "fan_in"  # "fan_in", "fan_out" or "fan_avg"
    parameter: str | None = None
    description: str = ""

    def std(self, fan_in: int, fan_out: int, init_range: float | None, init_std: float | None) -> float:
        """Standard deviation of the weights this scheme draws for one layer."""
        if self.parameter == "init_range":
            return _required(init_range, self) / math.sqrt(3.0)
        if self.parameter == "init_std":
            return _required(init_std, self)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return math.sqrt(self.scale / fan)

    def draw(
        self,
        rng: np.random.Generator,
        fan_in: int,
        fan_out: int,
        init_range: float | None = None,
        init_std: float | None = None,
        dtype: np.dtype | type = np.float32,
    ) -> np.ndarray:
        """A ``(fan_in, fan_out)`` weight matrix drawn from ``rng``."""
        std = self.std(fan_in, fan_out, init_range, init_std)
        if self.distribution == "uniform":
            limit = std * math.sqrt(3.0)  # U(-l, l) has variance l^2 / 3
            weights = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        else:
            weights = rng.normal(0.0, std, size=(fan_in, fan_out))
        return weights.astype(dtype, copy=False)


def _required(value: float | None, init: Initializer) -> float:
    if value is None:
        raise ConfigError(f"init {init.name!r} needs {init.parameter}; give --{init.parameter.replace('_', '-')}")
    return value


INITIALIZERS: dict[str, Initializer] = {
    init.name: init
    for init in (
        Initializer("uniform", "uniform", parameter="init_range", description="U(-r, r), r = init_range"),
        Initializer("normal", "normal", parameter="init_std", description="N(0, s^2), s = init_std"),
        Initializer("glorot-uniform", "uniform", 1.0, "fan_avg", description="Glorot/Xavier, uniform"),
        Initializer("glorot-normal", "normal", 1.0, "fan_avg", description="Glorot/Xavier, normal"),
        Initializer("he-uniform", "uniform", 2.0, "fan_in", description="He/Kaiming, uniform"),
        Initializer("he-normal", "normal", 2.0, "fan_in", description="He/Kaiming, normal"),
        Initializer("lecun-normal", "normal", 1.0, "fan_in", description="LeCun, normal"),
    )
}

# The init of each activation family: what "no --init given" means, and what
# the training advice recommends, so the two never disagree. He keeps the
# variance of ReLU-like units (half of them are off), Glorot keeps
# logistic/tanh units near their linear region; a linear net is a product of
# matrices, Glorot again. He's variant is the normal one (he-uniform draws the
# same variance 2 / fan_in): a config that names no init must keep training the
# same weights, so the default, and with it the advice, stays he-normal.
DEFAULT_INIT_FOR_FAMILY: dict[str, str] = {
    "relu": "he-normal",
    "saturating": "glorot-uniform",
    "linear": "glorot-uniform",
}


def describe_defaults() -> str:
    """The family table in words, for help: ``he-normal for the relu family, glorot-uniform otherwise``."""
    shared = Counter(DEFAULT_INIT_FOR_FAMILY.values()).most_common(1)[0][0]
    own = [f"{init} for the {family} family" for family, init in DEFAULT_INIT_FOR_FAMILY.items() if init != shared]
    return ", ".join([*own, f"{shared} otherwise"]) if own else shared


# How a scale parameter is written in a description: ``uniform r=0.01``, ``normal s=0.1``.
SCALE_SYMBOLS: dict[str, str] = {"init_range": "r", "init_std": "s"}


def describe_init(init: str | None, init_range: float | None = None, init_std: float | None = None,
                  compact: bool = False) -> str:
    """The init as reports, plots and messages name it: ``he-normal``, ``uniform r=0.01``, ``normal s=0.1``.

    ``compact`` gives the filesystem-safe form of run-directory names
    (``uniform-r0.01``). The scale shown is the one the table's row needs,
    so a scheme that needs none is its name alone; ``None`` (not chosen yet)
    is ``auto``.
    """
    row = INITIALIZERS.get(init) if init else None
    parameter = row.parameter if row else None
    value = init_range if parameter == "init_range" else init_std if parameter == "init_std" else None
    if parameter is None or value is None:
        return init or "auto"
    symbol = SCALE_SYMBOLS[parameter]
    return f"{init}-{symbol}{value:g}" if compact else f"{init} {symbol}={value:g}"


def get_initializer(name: str) -> Initializer:
    """Look an initializer up by name; ConfigError lists the choices."""
    if name not in INITIALIZERS:
        raise ConfigError(f"unknown init {name!r}; choose one of: {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]
