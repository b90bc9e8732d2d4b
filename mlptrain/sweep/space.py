"""A search spec: a base config and a space of values per key, searched by Optuna (``sweep.study``).

A spec with ``search:`` instead of ``grid:`` (see ``SEARCH_KEYS``)::

    base: {hidden: [256, 256], epochs: 3}
    search:
      lr: {log-uniform: [0.01, 0.5]}
      momentum: {uniform: [0.8, 0.99]}
      batch_size: {choice: [64, 128, 256]}
      hidden: {depth: [1, 3], width: [64, 1024]}   # or {choice: [[256], [512, 256]]}
    trials: 20
    sampler: tpe          # SAMPLERS
    pruner: median        # PRUNERS
    prune_after: 3        # epochs every trial runs before the pruner may stop it (default 1)
    time_budget: 900      # seconds: no trial starts after this (optional)
    sampler_seed: 0

This module knows no Optuna: it checks the spec (every bound and choice by the
key's own ``config.FIELDS`` parser, and a config resolved at every edge of the
space) and turns a trial's parameters into config values. The objective is
the best epoch's validation accuracy; every trial trains with ``base.seed``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlptrain.config import FIELDS, MAX_SEED, Config, build_config
from mlptrain.configfile import load_config_file, resolve_layers
from mlptrain.errors import ConfigError
from mlptrain.sweep.spec import SPEC_KEYS, _base, _mapping, _parsed, _unknown_spec_key, plain

DISTRIBUTIONS = {  # name -> what a trial draws; a space is one of these per key (hidden also takes depth x width)
    "log-uniform": "a number in [low, high], uniform in its logarithm (low > 0)",
    "uniform": "a number in [low, high], uniform",
    "int": "a whole number from low to high",
    "choice": "one of the values listed",
}
SAMPLERS = {"tpe": "Optuna's tree-structured Parzen estimator: after 10 random trials, draws near the best so far",
            "random": "independent uniform draws: a baseline"}
PRUNERS = {"none": "every trial runs all its epochs",
           "median": "stop a trial whose validation accuracy at an epoch is below the median of earlier trials' "
                     "at that epoch (after 3 trials)",
           "hyperband": "successive halving over epochs, in several brackets (Li et al. 2018)"}
GRID_ONLY = ("grid", "seeds", "sample", "sample_seed")
MAX_TRIALS = 100_000
DEPTH_WIDTH = "depth-width"  # hidden as depth x width: (depth low, depth high, width low, width high)


@dataclass(frozen=True)
class Dim:
    """One key's space: ``kind`` a DISTRIBUTIONS name or DEPTH_WIDTH; ``args`` the bounds or the parsed choices."""

    key: str
    kind: str
    args: tuple

    def edges(self) -> list[Any]:
        """Config values at the space's edges (each bound, each choice): what the spec checks resolve."""
        if self.kind == DEPTH_WIDTH:
            d_lo, d_hi, w_lo, w_hi = self.args
            return [(w_lo,) * d_lo, (w_hi,) * d_hi]
        return list(self.args)

    def record(self) -> dict[str, Any]:
        if self.kind == DEPTH_WIDTH:
            return {"depth": list(self.args[:2]), "width": list(self.args[2:])}
        return {self.kind: [plain(v) for v in self.args]}


@dataclass(frozen=True)
class SearchPlan:
    """A validated search spec."""

    spec_file: Path
    base: dict[str, Any]
    base_sources: dict[str, str]
    space: list[Dim]
    trials: int
    sampler: str
    pruner: str
    time_budget: float | None
    sampler_seed: int
    datasets: list[str]  # every data set a trial may train on, in first-use order
    max_epochs: int
    prune_after: int = 1  # epochs every trial runs before the pruner may stop it

    @property
    def varying(self) -> list[str]:
        return [dim.key for dim in self.space]

    @property
    def seed(self) -> int:
        return int(self.base.get("seed", 0))

    def record(self) -> dict[str, Any]:
        """The spec as plain JSON values, for ``sweep.json`` (trials and time_budget may change on a re-run)."""
        return {"base": {k: plain(v) for k, v in self.base.items()},
                "search": {dim.key: dim.record() for dim in self.space},
                "sampler": self.sampler, "pruner": self.pruner, "sampler_seed": self.sampler_seed,
                **({"prune_after": self.prune_after} if self.prune_after != 1 else {})}

    def describe(self) -> str:
        budget = f", at most {self.time_budget:g} s" if self.time_budget else ""
        after = f" after {self.prune_after} epochs" if self.prune_after != 1 else ""
        return (f"search of {', '.join(self.varying)}: {self.trials} trials ({self.sampler} sampler, "
                f"{self.pruner} pruner{after}{budget})")

    def config(self, values: dict[str, Any]) -> Config:
        """A trial's whole config: the base, then the drawn values (ConfigError naming them if they clash)."""
        sources = {key: f"{self.spec_file} search" for key in values}
        try:
            return resolve_layers([(self.base, self.base_sources), (values, sources)]).config
        except ConfigError as exc:
            shown = ", ".join(f"{k}={plain(v)!r}" for k, v in values.items())
            raise ConfigError(f"{exc} (in the search point {shown})") from None


def is_search_spec(path: Path) -> bool:
    """Whether the spec at ``path`` holds ``search:`` (else it is a grid)."""
    return "search" in load_config_file(path)


def load_search(path: Path) -> SearchPlan:
    """Read and check a search spec; ConfigError, one line naming the key, on any problem; nothing runs."""
    raw = load_config_file(path)
    for key in raw:
        if key not in SPEC_KEYS:
            raise ConfigError(_unknown_spec_key(key, path))
        if key in GRID_ONLY:
            raise ConfigError(f"{path}: {key}: is for a grid; a spec holds search: or grid:, not both "
                              "(a search trains every trial with base.seed: re-run its best.yaml over seeds with "
                              "a grid sweep)" if key != "grid" else
                              f"{path}: search: and grid: together: a spec holds one of them; put fixed values "
                              "under base: and search the rest")
    base, sources = _base(raw, path)
    space = [_dim(key, value, path) for key, value in _search_mapping(raw.get("search"), path).items()]
    plan = SearchPlan(path, base, sources, space, _trials(raw.get("trials"), path),
                      _table(raw.get("sampler", "tpe"), SAMPLERS, "sampler", path),
                      _table(raw.get("pruner", "median"), PRUNERS, "pruner", path),
                      _budget(raw.get("time_budget"), path), _sampler_seed(raw.get("sampler_seed", 0), path),
                      [], 0)
    configs = _edge_configs(plan)
    max_epochs = max(c.epochs for c in configs)
    return SearchPlan(**{**vars(plan), "datasets": list(dict.fromkeys(c.dataset for c in configs)),
                         "max_epochs": max_epochs,
                         "prune_after": _prune_after(raw.get("prune_after", 1), plan.pruner, max_epochs, path)})


def _search_mapping(value: Any, path: Path) -> dict[str, Any]:
    search = _mapping(value, "search", path)
    if not search:
        raise ConfigError(f"{path}: search: is empty: give at least one config key and its space, "
                          "e.g. search: {lr: {log-uniform: [0.01, 0.5]}}")
    return search


def _dim(key: str, value: Any, path: Path) -> Dim:
    """One key's space, each bound or choice checked by the key's own parser."""
    where = f"{path}: search: {key}"
    if key == "seed":
        raise ConfigError(f"{where}: the seed is not searched; every trial trains with base.seed")
    if key not in FIELDS:
        build_config({key: None}, {key: f"{path} search"})  # the unknown-key message, with the closest key
    if not isinstance(value, dict) or len(value) == 0:
        raise ConfigError(f"{where} must be one distribution and its values, e.g. {key}: {{choice: [a, b]}} "
                          f"(the distributions: {', '.join(DISTRIBUTIONS)})")
    given = {str(k).replace("_", "-"): v for k, v in value.items()}
    if key == "hidden" and set(given) == {"depth", "width"}:
        return _depth_width(given, where, path)
    if len(given) != 1:
        raise ConfigError(f"{where} gives {', '.join(given)}: give one distribution "
                          f"({', '.join(DISTRIBUTIONS)}{'; or depth: and width:' if key == 'hidden' else ''})")
    (kind, args), = given.items()
    if kind not in DISTRIBUTIONS:
        close = difflib.get_close_matches(kind, list(DISTRIBUTIONS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        extra = " (or depth: and width: for hidden)" if key == "hidden" else ""
        raise ConfigError(f"{where}: unknown distribution {kind!r}; {hint}the distributions: "
                          f"{', '.join(DISTRIBUTIONS)}{extra}")
    if kind == "choice":
        return Dim(key, kind, _choices(key, args, where, path))
    return Dim(key, kind, _bounds(key, kind, args, where, path))


def _choices(key: str, values: Any, where: str, path: Path) -> tuple:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: choice must be a non-empty list of values, e.g. choice: [a, b]")
    parsed = [_parsed(key, v, f"{path} search") for v in values]
    twice = [v for i, v in enumerate(parsed) if v in parsed[:i]]
    if twice:
        raise ConfigError(f"{where}: choice lists {plain(twice[0])!r} twice (after aliases); give each value once")
    return tuple(parsed)


def _bounds(key: str, kind: str, values: Any, where: str, path: Path) -> tuple:
    """[low, high]: numbers (whole for int), low < high, low > 0 on a log scale, each valid for the key."""
    whole = kind == "int"
    if (not isinstance(values, list) or len(values) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
        raise ConfigError(f"{where}: {kind} takes [low, high], two numbers, got {values!r}")
    if whole and not all(isinstance(v, int) for v in values):
        raise ConfigError(f"{where}: int takes two whole numbers, got {values!r}")
    if FIELDS[key].kind is not (int if whole else float):
        other = "int: [low, high]" if FIELDS[key].kind is int else "choice: [...]" if not whole else "uniform"
        raise ConfigError(f"{where}: {kind} does not suit {key} ({FIELDS[key].help}); use {other}")
    low, high = values
    if low >= high:
        raise ConfigError(f"{where}: {kind}: low {low!r} must be below high {high!r}")
    if kind == "log-uniform" and low <= 0:
        raise ConfigError(f"{where}: log-uniform needs bounds above 0, got low {low!r}; use uniform, or a low > 0")
    return tuple(_parsed(key, v, f"{path} search") for v in values)


def _depth_width(given: dict[str, Any], where: str, path: Path) -> Dim:
    """hidden: {depth: [a, b], width: [c, d]}: a layers of one width; the width drawn on a log scale."""
    depth, width = given["depth"], given["width"]
    for name, pair, least in (("depth", depth, 1), ("width", width, 1)):
        if (not isinstance(pair, list) or len(pair) != 2 or not all(type(v) is int for v in pair)
                or not least <= pair[0] < pair[1]):
            raise ConfigError(f"{where}: {name} takes [low, high], whole numbers with {least} <= low < high, "
                              f"got {pair!r}")
    for w in width:
        _parsed("hidden", [w], f"{path} search")
    return Dim("hidden", DEPTH_WIDTH, (*depth, *width))


def _trials(value: Any, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TRIALS:
        raise ConfigError(f"{path}: trials must be a whole number from 1 to {MAX_TRIALS} (the trials of the search, "
                          f"pruned ones included), got {value!r}")
    return value


def _table(value: Any, table: dict[str, str], what: str, path: Path) -> str:
    if value not in table:
        raise ConfigError(f"{path}: unknown {what} {value!r}; choose one of: {', '.join(table)}")
    return value


def _budget(value: Any, path: Path) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(f"{path}: time_budget must be a number of seconds above 0, got {value!r}")
    return float(value)


def _prune_after(value: Any, pruner: str, max_epochs: int, path: Path) -> int:
    """Epochs before the pruner may stop a trial: at least 1, and fewer than the trials' epochs."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{path}: prune_after must be a whole number of epochs from 1, got {value!r}")
    if value != 1 and pruner == "none":
        raise ConfigError(f"{path}: prune_after {value} with pruner: none prunes nothing; choose a pruner "
                          f"({', '.join(p for p in PRUNERS if p != 'none')}) or leave prune_after out")
    if value >= max_epochs and value != 1:
        raise ConfigError(f"{path}: prune_after {value} is not below the trials' {max_epochs} epochs, so nothing "
                          "would be pruned; lower it, or use pruner: none")
    return value


def _sampler_seed(value: Any, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{path}: sampler_seed must be a whole number from 0 to {MAX_SEED}, got {value!r}")
    return value


def _edge_configs(plan: SearchPlan) -> list[Config]:
    """A config at each edge of each key's space (the others at their first edge), each resolved in full."""
    first = {dim.key: dim.edges()[0] for dim in plan.space}
    configs = [plan.config({k: plain(v) for k, v in {**first, dim.key: edge}.items()})
               for dim in plan.space for edge in dim.edges()]
    if any(c.val_size == 0 for c in configs):
        raise ConfigError(f"{plan.spec_file}: a search's objective is the validation accuracy: val_size must be "
                          "above 0")
    return configs


def values_from_params(plan: SearchPlan, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's config values from its drawn parameters (``study.distributions`` names them)."""
    values: dict[str, Any] = {}
    for dim in plan.space:
        if dim.kind == DEPTH_WIDTH:
            values[dim.key] = [params[f"{dim.key}_width"]] * params[f"{dim.key}_depth"]
        elif dim.kind == "choice":
            values[dim.key] = plain(dict(zip(map(encode, dim.args), dim.args))[params[dim.key]])
        else:
            values[dim.key] = params[dim.key]
    return values


def encode(value: Any) -> Any:
    """A choice as Optuna stores it (None, bool, int, float or str): hidden layers as ``256x256``, augment
    steps joined with commas."""
    if isinstance(value, tuple):
        joiner = "x" if all(isinstance(v, int) for v in value) else ","
        return joiner.join(map(str, value)) or "none"
    return value
