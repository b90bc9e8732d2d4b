"""The training configuration: a frozen dataclass, loaded from YAML, overridden by flags, validated.

Every key is described once in ``FIELDS`` (its type, its allowed range and a
one-line help text); the YAML loader, the validation, the CLI's flag help and
the tests all read that table. Validation happens before any work: a bad value
never reaches the data or the run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from mlptrain.data.augment import augmentation_names, check_mirroring, parse_augment
from mlptrain.data.datasets import DATASETS, dataset_names
from mlptrain.data.parts import Preparation, parse_size
from mlptrain.data.prepare import PREPROCESSING
from mlptrain.errors import ConfigError
from mlptrain.nn.activations import activation_names, get_activation
from mlptrain.nn.initializers import DEFAULT_INIT_FOR_FAMILY, INITIALIZERS, describe_defaults, get_initializer
from mlptrain.nn.norms import norm_names
from mlptrain.nn.optimizers import OPTIMIZERS
from mlptrain.nn.schedules import SCHEDULES

DTYPES = ("float32", "float64")
MONITORS = {"val_acc": "max", "val_loss": "min"}  # metric -> which direction is better
MAX_SEED = 2**63 - 1
# 16384 x 16384 float32 weights are 1 GiB, already more than a CPU MLP trainer should be asked for.
MAX_WIDTH = 16384


@dataclass(frozen=True)
class Config:
    """Everything that decides a run's numbers (the data location is not part of it)."""

    dataset: str = "mnist"
    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    init: str | None = None  # None: chosen from the activation, see resolve_init
    init_range: float | None = None
    init_std: float | None = None
    bias_init: float = 0.0
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    dropout: float = 0.0
    input_dropout: float = 0.0
    max_norm: float | None = None
    lr_schedule: str = "constant"
    lr_step: int = 10
    lr_gamma: float = 0.1
    lr_min: float = 0.0
    warmup_epochs: int = 0
    batch_size: int = 128
    epochs: int = 10
    val_size: int = 5000
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str = "val_acc"
    seed: int = 0
    dtype: str = "float32"
    signal_factor: float = 10.0
    augment: tuple[str, ...] = ()
    label_smoothing: float = 0.0
    tensorboard: bool = False  # output only: never changes the numbers
    preprocess: str = "mnist"
    image_size: int = 28
    image_shape: tuple[int, int] | None = None
    test_size: int | float = 0.2
    norm: str = "none"
    norm_momentum: float = 0.9
    norm_eps: float = 1e-5

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, ready for YAML/JSON (``hidden``, ``augment`` and ``image_shape`` as lists)."""
        values = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}

    def preparation(self) -> Preparation:
        """How a user's data set becomes arrays, as this config says (``data.parts.Preparation``)."""
        return Preparation(self.preprocess, self.image_size, self.image_shape, self.test_size)


@dataclass(frozen=True)
class Field:
    """How one config key is parsed and checked."""

    parse: Callable[[Any], Any]  # raises ValueError with the allowed values
    help: str
    optional: bool = False  # may be null
    kind: type = str  # what a command-line flag for this key parses its text as
    choices: Callable[[], list[str]] | None = None  # the allowed names, for choice keys


def _number(low: float, high: float, low_open: bool = False, high_open: bool = False):
    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"a number in {_interval(low, high, low_open, high_open)}")
        if (value < low or (low_open and value == low)) or (value > high or (high_open and value == high)):
            raise ValueError(f"a number in {_interval(low, high, low_open, high_open)}")
        return float(value)

    return parse


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _integer(low: int, high: int):
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value

    return parse


def _choice(choices: Callable[[], list[str]], canonical: Callable[[str], str] = lambda s: s):
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in choices():
            raise ValueError(f"one of: {', '.join(choices())}")
        return canonical(value)

    return parse


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value


def parse_hidden(value: Any) -> tuple[int, ...]:
    """Hidden widths from a list, a comma string ``"256,256"``, one int, or ``""``/``0`` (none)."""
    allowed = f'layer widths from 1 to {MAX_WIDTH}, e.g. [256, 256] or "256,256" ("" or 0 for no hidden layer)'
    if value is None:
        raise ValueError(allowed)
    if value in ("", 0, "0") or value == []:
        return ()
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(",")]
        except ValueError:
            raise ValueError(allowed) from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_WIDTH for v in value
    ):
        raise ValueError(allowed)
    return tuple(value)


def parse_shape(value: Any) -> tuple[int, int]:
    """An image's ``(height, width)`` from ``"28,28"`` or ``[28, 28]``."""
    allowed = "a height and width in pixels, e.g. 28,28"
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.replace("x", ",").split(",")]
        except ValueError:
            raise ValueError(allowed) from None
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in value
    ):
        raise ValueError(allowed)
    return int(value[0]), int(value[1])


def _names(table: Mapping[str, Any]) -> Callable[[], list[str]]:
    return lambda: list(table)


def _choice_field(
    choices: Callable[[], list[str]], help: str, canonical: Callable[[str], str] = lambda s: s,
    optional: bool = False,
) -> Field:
    return Field(_choice(choices, canonical), help, optional, choices=choices)


FIELDS: dict[str, Field] = {
    "dataset": Field(_text, f"data set: {dataset_names()}, or a directory of IDX files"),
    "hidden": Field(parse_hidden, 'hidden layer widths, e.g. 256,256 ("" for none)'),
    "activation": _choice_field(
        activation_names, "hidden-unit activation", lambda s: get_activation(s).name
    ),
    "init": _choice_field(
        _names(INITIALIZERS),
        f"weight initializer (default: {describe_defaults()})",
        optional=True,
    ),
    "init_range": Field(
        _number(0, 100, low_open=True), "r of the uniform init U(-r, r); alone it means --init uniform", True, float
    ),
    "init_std": Field(
        _number(0, 100, low_open=True), "std of the normal init N(0, s^2); alone it means --init normal", True, float
    ),
    "bias_init": Field(_number(-100, 100), "initial value of every bias", kind=float),
    "optimizer": _choice_field(_names(OPTIMIZERS), "update rule"),
    "lr": Field(_number(0, 10, low_open=True), "learning rate (the peak, with a schedule)", kind=float),
    "momentum": Field(_number(0, 1, high_open=True), "SGD momentum", kind=float),
    "nesterov": Field(_boolean, "Nesterov momentum (sgd)", kind=bool),
    "beta1": Field(_number(0, 1, high_open=True), "Adam/AdamW first-moment decay", kind=float),
    "beta2": Field(_number(0, 1, high_open=True), "Adam/AdamW second-moment decay", kind=float),
    "eps": Field(_number(0, 1, low_open=True), "Adam/AdamW epsilon", kind=float),
    "weight_decay": Field(
        _number(0, 1), "L2 weight decay (sgd, adam); decoupled decay with adamw; biases are not decayed",
        kind=float,
    ),
    "dropout": Field(_number(0, 1, high_open=True), "dropout rate of the hidden layers (inverted, off at eval)",
                     kind=float),
    "input_dropout": Field(_number(0, 1, high_open=True), "dropout rate of the input pixels", kind=float),
    "max_norm": Field(_number(0, 1000, low_open=True), "cap on the L2 norm of each unit's incoming weights",
                      True, float),
    "lr_schedule": _choice_field(_names(SCHEDULES), "learning-rate schedule over the epochs"),
    "lr_step": Field(_integer(1, 100_000), "step schedule: epochs between lr drops", kind=int),
    "lr_gamma": Field(_number(0, 1, low_open=True), "step/exponential schedule: lr factor", kind=float),
    "lr_min": Field(_number(0, 10), "cosine schedule: final lr", kind=float),
    "warmup_epochs": Field(_integer(0, 100_000), "epochs of linear lr warm-up before the schedule", kind=int),
    "batch_size": Field(_integer(1, 1_000_000), "minibatch size", kind=int),
    "epochs": Field(_integer(1, 100_000), "passes over the training set (at most, with early stopping)", kind=int),
    "val_size": Field(parse_size, "training images held out for validation: a count, or a fraction (0.1 or 10%) "
                      "(0: none)"),
    "patience": Field(_integer(1, 100_000), "early stopping: epochs without improvement before stopping",
                      True, int),
    "min_delta": Field(_number(0, 1000), "early stopping: the least change that counts as improvement",
                       kind=float),
    "monitor": _choice_field(lambda: list(MONITORS), "validation metric for early stopping and the best epoch"),
    "seed": Field(_integer(0, MAX_SEED), "seed for the init, the validation split and the shuffles", kind=int),
    "dtype": _choice_field(lambda: list(DTYPES), "floating-point type of the maths"),
    "signal_factor": Field(
        _number(1, 1e6, low_open=True), "diagnostics: warn when the signal shrinks or grows more than this "
        "from input to logits", kind=float,
    ),
    "label_smoothing": Field(
        _number(0, 1, high_open=True), "training targets (1 - e) x one-hot + e / classes (Szegedy et al. 2016); "
        "the train loss is then the smoothed one, the validation and test losses stay plain", kind=float,
    ),
    "tensorboard": Field(_boolean, "also write TensorBoard event files in the run (needs mlptrain[tensorboard])",
                         kind=bool),
    "augment": Field(
        parse_augment, "random distortions of the training batches, applied in order: "
        + ", ".join(augmentation_names()) + "; each NAME or NAME:KEY=VALUE:..., comma-separated (\"\" for none)",
    ),
    "preprocess": _choice_field(
        lambda: list(PREPROCESSING), "class-folder images: mnist prepares them as MNIST was made (grayscale, invert "
        "a light background, crop to the ink, scale to 20/28 of the side, centre by mass); none takes them as they "
        "are (all one size); predict does the same with the run's choice",
    ),
    "image_size": Field(_integer(4, 1024), "class folders with preprocess mnist: the side of the square images "
                        "they are prepared to", kind=int),
    "image_shape": Field(parse_shape, "CSV and .npz rows of pixels: the images' height,width (default: square)",
                         True),
    "test_size": Field(parse_size, "a data set without a test split (one level of class folders, one CSV file): the "
                       "images held out as its test split, the same ones every run: a count, or a fraction (0.2 "
                       "or 20%)"),
    "norm": _choice_field(
        norm_names, "normalisation in every hidden layer, between the affine map and the activation, with a "
        "learnable scale and shift (not weight-decayed): batch (running statistics at eval) or layer",
    ),
    "norm_momentum": Field(_number(0, 1, high_open=True), "batch norm: running statistics = m x running + "
                           "(1 - m) x the batch's", kind=float),
    "norm_eps": Field(_number(0, 1, low_open=True), "norm: added to the variance before its square root", kind=float),
}
assert set(FIELDS) == {f.name for f in dataclasses.fields(Config)}, "FIELDS must describe every Config key"


def normalize_key(key: str) -> str:
    """YAML keys may be spelled like flags (``init-range``) or like Python (``init_range``)."""
    return key.replace("-", "_")


def build_config(values: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> Config:
    """Validate ``values`` (already-normalized keys) and return a Config.

    ``sources`` says where each value came from (e.g. ``"--lr"`` or a file
    name) so the error can point at it.
    """
    sources = sources or {}
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        if key not in FIELDS:
            raise ConfigError(_unknown_key_message(key, sources.get(key)))
        field = FIELDS[key]
        if value is None and field.optional:
            parsed[key] = None
            continue
        try:
            parsed[key] = field.parse(value)
        except ValueError as exc:
            where = f" (from {sources[key]})" if key in sources else ""
            raise ConfigError(f"invalid {key}{where}: got {_shown(value)}, expected {exc}") from None
    return check_consistency(resolve_init(Config(**parsed)))


def _shown(value: Any) -> str:
    """A bad value as the user wrote it: YAML's ``yes`` and an empty value are a boolean and nothing, not
    Python's True and None."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if value is None:
        return "nothing (an empty value)"
    return repr(value)


def check_consistency(config: Config) -> Config:
    """Reject combinations of keys that are each valid but mean nothing together."""
    problems = [
        (config.nesterov and (config.optimizer != "sgd" or config.momentum == 0),
         "nesterov needs optimizer sgd with a momentum > 0"),
        (config.patience is not None and config.val_size == 0,
         "patience (early stopping) needs a validation set: set val_size > 0"),
        (config.warmup_epochs >= config.epochs,
         f"warmup_epochs {config.warmup_epochs} leaves no epoch for the schedule: use fewer than epochs"),
        (config.lr_schedule == "cosine" and config.lr_min >= config.lr,
         f"lr_min {config.lr_min:g} must be below lr {config.lr:g} for the cosine schedule"),
        (config.norm == "batch" and config.batch_size < 2,
         "norm batch needs batch_size 2 or more (a batch of one has no spread to normalise): "
         "raise batch_size or use norm layer"),
    ]
    for bad, message in problems:
        if bad:
            raise ConfigError(message)
    if config.dataset in DATASETS:
        check_mirroring(config.augment, config.dataset, DATASETS[config.dataset].mirror_safe)
    return config


def _unknown_key_message(key: str, source: str | None) -> str:
    where = f" in {source}" if source else ""
    close = difflib.get_close_matches(key, list(FIELDS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(FIELDS)}"
    return f"unknown config key {key!r}{where}{hint}"


def resolve_init(config: Config) -> Config:
    """Check the init settings agree; infer ``uniform``/``normal`` from a lone range/std.

    Leaves ``init=None`` when nothing was given: ``default_init`` then picks
    one from the activation (and the CLI says which).
    """
    init, r, s = config.init, config.init_range, config.init_std
    if r is not None and s is not None:
        raise ConfigError("give init_range (uniform init) or init_std (normal init), not both")
    if init is None and r is not None:
        init = "uniform"
    elif init is None and s is not None:
        init = "normal"
    if init is not None:
        needed = get_initializer(init).parameter
        given = "init_range" if r is not None else "init_std" if s is not None else None
        if needed != given:
            raise ConfigError(_init_mismatch(init, needed, given))
    return dataclasses.replace(config, init=init)


def _init_mismatch(init: str, needed: str | None, given: str | None) -> str:
    if needed is not None:
        return f"init {init!r} needs {needed} (--{needed.replace('_', '-')})"
    return f"{given} applies only to init {'uniform' if given == 'init_range' else 'normal'!r}, not {init!r}"


def default_init(config: Config) -> Config:
    """Fill in the init from the activation's family when none was given."""
    if config.init is not None:
        return config
    family = get_activation(config.activation).family
    return dataclasses.replace(config, init=DEFAULT_INIT_FOR_FAMILY[family])


INIT_GROUP = ("init", "init_range", "init_std")


def merge(file_values: Mapping[str, Any], flag_values: Mapping[str, Any]) -> dict[str, Any]:
    """Flags override the file; the init flags replace the file's init settings as a group.

    So ``--init-range 0.5`` on top of a file with ``init: he-normal`` means a
    uniform init with r = 0.5, as it would without the file.
    """
    merged = dict(file_values)
    if any(key in flag_values for key in INIT_GROUP):
        for key in INIT_GROUP:
            merged.pop(key, None)
    merged.update(flag_values)
    return merged
