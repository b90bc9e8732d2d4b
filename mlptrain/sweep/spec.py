"""A sweep spec: a base config, a grid of values, seeds; expanded into named trials.

A spec is a YAML mapping (see ``SPEC_KEYS``)::

    base:                 # any config keys, as in a --config file
      hidden: [256, 256]
      epochs: 3
    grid:                 # config key -> list of values; the cartesian product
      activation: [logistic, relu]
      init_range: [0.01, 0.1, 1.0]
    seeds: 2              # repeats with seeds base.seed, base.seed + 1, ... (or a list)
    sample: 4             # optional: only this many grid points, drawn at random
    sample_seed: 0

Every grid value is checked with the same ``config.FIELDS`` parser as a flag
or config file, and every trial's whole config is resolved as a command's is
(``configfile.resolve_layers``: the ``config:`` file, then ``base:``, then the
grid point and seed), before any trial runs. A trial is named from the parameters that vary, e.g.
``activation=relu,init_range=0.01,seed=1``: readable, stable, and safe as a
directory name.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mlptrain import __version__
from mlptrain.config import FIELDS, MAX_SEED, Config, build_config, merge, normalize_key
from mlptrain.configfile import Layer, load_config_file, read_config_file, resolve_layers
from mlptrain.errors import ConfigError

SPEC_KEYS = {  # top-level key -> what it means (also the "unknown key" message's vocabulary)
    "base": "config keys shared by every trial",
    "config": "a config YAML file (relative to the spec) under base",
    "grid": "config key -> list of values",
    "seeds": "repeats: a count, or a list of seeds",
    "sample": "run only this many grid points, drawn at random",
    "sample_seed": "seed of that draw",
    "search": "config key -> its space, searched by Optuna instead of a grid (sweep.space)",
    "trials": "search: how many trials",
    "sampler": "search: how the next point is drawn",
    "pruner": "search: which trials stop early",
    "prune_after": "search: epochs every trial runs before the pruner may stop it",
    "time_budget": "search: seconds after which no trial starts",
    "sampler_seed": "search: seed of the sampler",
}
SEARCH_ONLY = ("search", "trials", "sampler", "pruner", "prune_after", "time_budget", "sampler_seed")
SPEC_FORMAT = 1
NAME_VALUE_MAX = 40  # longer values are shortened to a prefix plus a hash in trial names
SAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its directory name, its varying parameters (seed included) and its config."""

    name: str
    params: dict[str, Any]
    config: Config


@dataclass(frozen=True)
class SweepPlan:
    """A validated spec and the trials it expands to, in a stable order."""

    spec_file: Path
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]
    sample: int | None
    sample_seed: int
    trials: list[Trial]

    @property
    def varying(self) -> list[str]:
        """The grid keys that take more than one value (the axes of the tables and plots)."""
        return [key for key, values in self.grid.items() if len(values) > 1]

    def record(self) -> dict[str, Any]:
        """The spec as plain JSON values, for ``sweep.json`` and to recognise the same sweep later."""
        return {
            "base": {key: plain(value) for key, value in self.base.items()},
            "grid": {key: [plain(v) for v in values] for key, values in self.grid.items()},
            "seeds": self.seeds,
            "sample": self.sample,
            "sample_seed": self.sample_seed,
        }

    def describe(self) -> str:
        """``4 activation x 7 init_range x 2 seeds = 56 trials`` (or the sampled count)."""
        axes = [f"{len(values)} {key}" for key, values in self.grid.items() if len(values) > 1]
        axes.append(f"{len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''}")
        sampled = f" (sample of {self.sample} grid points)" if self.sample else ""
        return f"{' x '.join(axes)}{sampled} = {len(self.trials)} trial{'s' if len(self.trials) != 1 else ''}"


def plain(value: Any) -> Any:
    """A config value as JSON/YAML has it (``hidden`` as a list)."""
    return list(value) if isinstance(value, tuple) else value


def load_spec(path: Path) -> SweepPlan:
    """Read, validate and expand a sweep spec; ConfigError naming the key on any problem."""
    raw = load_config_file(path)  # the same strict YAML reading as a config file; keys normalized
    for key in raw:
        if key not in SPEC_KEYS:
            raise ConfigError(_unknown_spec_key(key, path))
        if key in SEARCH_ONLY:
            raise ConfigError(f"{path}: {key}: is for a search; give search: (config key -> space) to use it")
    base, base_sources = _base(raw, path)
    grid = _grid(raw.get("grid"), path)
    seeds = _seeds(raw.get("seeds", 1), base, path)
    if not grid and len(seeds) < 2:
        raise ConfigError(f"{path}: nothing to sweep: give grid: with at least one config key and its list of "
                          "values (e.g. grid: {{init_range: [0.01, 0.1]}}), or seeds: 2 or more")
    sample, sample_seed = _sample(raw, grid, path)
    points = _points(grid, sample, sample_seed)
    trials = _trials((base, base_sources), grid, points, seeds, path)
    return SweepPlan(path, base, grid, seeds, sample, sample_seed, trials)


def _unknown_spec_key(key: str, path: Path) -> str:
    if key in FIELDS:
        return f"{path}: {key!r} is a config key: put it under base: (or under grid: with a list of values)"
    close = difflib.get_close_matches(key, list(SPEC_KEYS), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"the spec's keys are: {', '.join(SPEC_KEYS)}"
    return f"{path}: unknown sweep spec key {key!r}; {hint}"


def _mapping(value: Any, what: str, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{path}: {what} must be a mapping of config keys, got {type(value).__name__}")
    normalized = {normalize_key(k): v for k, v in value.items()}
    if len(normalized) < len(value):  # init-range and init_range: one key twice, the last would silently win
        twice = next(n for n in normalized if sum(normalize_key(k) == n for k in value) > 1)
        raise ConfigError(f"{path}: {what}: key {twice!r} is given twice (spelled two ways); give it once")
    return normalized


def _base(raw: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``config:`` file's keys, overridden by ``base:``, each value checked; and where each one came from."""
    file_values: dict[str, Any] = {}
    file_source = ""
    if raw.get("config") is not None:
        if not isinstance(raw["config"], str):
            raise ConfigError(f"{path}: config must be the path of a config YAML file")
        config_path, file_values = read_config_file(raw["config"], path.parent)
        file_source = str(config_path)
    given = _mapping(raw.get("base"), "base", path)
    base = merge(file_values, given)
    sources = {key: f"{path} base" if key in given else file_source for key in base}
    for key, value in base.items():  # each value alone; how they combine is checked per trial
        _parsed(key, value, sources[key])
    return base, sources


def _grid(value: Any, path: Path) -> dict[str, list[Any]]:
    """Each key known, each list non-empty, each value parsed by its FIELDS entry, no value twice."""
    grid: dict[str, list[Any]] = {}
    for key, values in _mapping(value, "grid", path).items():
        if key == "seed":
            raise ConfigError(f"{path}: grid: seed: use seeds: N (or seeds: [list]) for repeats over seeds")
        if key not in FIELDS:
            build_config({key: None}, {key: f"{path} grid"})  # raises the unknown-key message with a suggestion
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid: {key} must be a non-empty list of values, e.g. {key}: [a, b]"
                              if key != "hidden" else f"{path}: grid: hidden must be a non-empty list of layer "
                              "lists, e.g. hidden: [[256], [256, 256]]")
        parsed = [_parsed(key, v, f"{path} grid") for v in values]
        twice = [v for i, v in enumerate(parsed) if v in parsed[:i]]
        if twice:
            raise ConfigError(f"{path}: grid: {key} lists {plain(twice[0])!r} twice (after aliases); "
                              "give each value once")
        grid[key] = parsed
    return grid


def _parsed(key: str, value: Any, source: str) -> Any:
    """One value through its FIELDS parser, with build_config's messages (unknown key, bad value)."""
    if key not in FIELDS:
        build_config({key: value}, {key: source})  # raises the unknown-key message with a suggestion
    field = FIELDS[key]
    if value is None and field.optional:
        return None
    try:
        return field.parse(value)
    except ValueError as exc:
        raise ConfigError(f"invalid {key} (from {source}): got {value!r}, expected {exc}") from None


def _seeds(value: Any, base: dict[str, Any], path: Path) -> list[int]:
    """``seeds: N`` means base.seed, base.seed + 1, ... ; a list is taken as given."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 10_000:
            raise ConfigError(f"{path}: seeds must be a count from 1 to 10000 or a list of seeds, got {value}")
        first = base.get("seed", 0)
        return list(range(first, first + value))
    if isinstance(value, list) and value and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_SEED for v in value) and len(
            set(value)) == len(value):
        return list(value)
    raise ConfigError(f"{path}: seeds must be a count (e.g. seeds: 2) or a list of distinct whole numbers "
                      f"from 0 to {MAX_SEED}, got {value!r}")


def _sample(raw: dict[str, Any], grid: dict[str, list[Any]], path: Path) -> tuple[int | None, int]:
    size = int(np.prod([len(v) for v in grid.values()])) if grid else 1
    sample, seed = raw.get("sample"), raw.get("sample_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{path}: sample_seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    if sample is None:
        return None, seed
    if isinstance(sample, bool) or not isinstance(sample, int) or not 1 <= sample <= size:
        raise ConfigError(f"{path}: sample must be a whole number from 1 to {size} (the grid's size), "
                          f"got {sample!r}; drop sample: to run every grid point")
    return sample, seed


def _points(grid: dict[str, list[Any]], sample: int | None, sample_seed: int) -> list[dict[str, Any]]:
    """The cartesian product in grid order (first key slowest), or a random subset of it kept in that order."""
    points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    if sample is not None:
        # A prefix of one permutation: a larger sample with the same seed keeps the smaller one's points,
        # so a sweep can grow by sampling more (Generator.choice draws a different set for each size).
        chosen = np.random.default_rng(sample_seed).permutation(len(points))[:sample]
        points = [points[i] for i in sorted(chosen)]
    return points


def _trials(base: Layer, grid: dict[str, list[Any]], points: list[dict[str, Any]], seeds: list[int],
            path: Path) -> list[Trial]:
    """Resolve every trial's config: the base, then the grid point and seed (whose init keys replace the base's
    init settings, as flags do a file's)."""
    varying = [key for key, values in grid.items() if len(values) > 1]
    trials, names = [], set()
    for point in points:
        for seed in seeds:
            values = {**{k: plain(v) for k, v in point.items()}, "seed": seed}
            sources = {key: f"{path} grid" for key in point} | {"seed": f"{path} seeds"}
            try:
                config = resolve_layers([base, (values, sources)]).config
            except ConfigError as exc:
                raise ConfigError(f"{exc} (in the trial {trial_name(point, varying, seed)})") from None
            params = {key: point[key] for key in varying} | {"seed": seed}
            name = trial_name(point, varying, seed)
            assert name not in names, f"trial name {name} is not unique"
            names.add(name)
            trials.append(Trial(name, params, config))
    return trials


def trial_name(point: Mapping[str, Any], varying: list[str], seed: int) -> str:
    """``key=value,...,seed=N`` over the varying keys: no slashes or spaces, unique per point."""
    return ",".join([*(f"{key}={format_value(point[key])}" for key in varying), f"seed={seed}"])


def format_value(value: Any) -> str:
    """A value as it appears in a trial name: short, filesystem-safe, and distinct for distinct values.

    Floats use ``repr`` (0.001, 1e-05, 1.0: exact and round-trippable); hidden
    layers join with ``x`` (256x256, ``none`` for no hidden layer). A value that
    had to be altered to be safe (a data set path) gets a hash of the original.
    """
    if value is None:
        text = "none"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, tuple):
        text = "x".join(map(str, value)) or "none"
    else:
        text = repr(value) if isinstance(value, float) else str(value)
    safe = SAFE.sub("_", text)
    if safe != text or len(safe) > NAME_VALUE_MAX:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        safe = f"{safe[:NAME_VALUE_MAX - 9].strip('_')}-{digest}"
    return safe


def sweep_record(plan: SweepPlan, spec_text: str) -> dict[str, Any]:
    """What ``sweep.json`` holds: the spec as given and as resolved, the trials, the mlptrain version."""
    return {
        "format": SPEC_FORMAT,
        "mlptrain": __version__,
        "spec_file": str(plan.spec_file),
        "spec_text": spec_text,
        "spec": plan.record(),
        "varying": plan.varying,
        "trials": [t.name for t in plan.trials],
    }
