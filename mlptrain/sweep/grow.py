"""Whether a spec grows the sweep already in a directory: the same sweep with more grid values, seeds or points.

A sweep directory records its spec (``sweep.json``). A new spec may run into
it when every earlier trial is one of its trials with the same config: the
base and the fixed grid values unchanged, the same keys varying (trial names
come from them), and only values, seeds or sampled points added. Then only
the new trials run and the results merge. Anything else would mix two
studies in one table, and is refused naming each difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlptrain.errors import ConfigError


def growth_problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What keeps ``new`` (a sweep.json record) from growing ``old``; empty when it only adds trials."""
    if not isinstance(old.get("spec"), dict) or not isinstance(old.get("trials"), list):
        return ["its sweep.json is not one mlptrain wrote"]
    before, after = old["spec"], new["spec"]
    problems = _base_changes(before.get("base") or {}, after["base"])
    if old.get("varying") != new["varying"]:
        problems.append(f"the varying keys change from {_keys(old.get('varying'))} to {_keys(new['varying'])} "
                        "(trial names come from them)")
    problems += _grid_changes(before.get("grid") or {}, after["grid"], new["varying"])
    dropped = [s for s in before.get("seeds") or [] if s not in after["seeds"]]
    if dropped:
        problems.append(f"seeds drops {', '.join(map(str, dropped))}")
    if before.get("sample") is not None or after["sample"] is not None:
        if before.get("sample_seed") != after["sample_seed"]:
            problems.append(f"sample_seed changes from {before.get('sample_seed')} to {after['sample_seed']}")
    if not problems:
        trials = set(new["trials"])
        missing = [name for name in old["trials"] if name not in trials]
        if missing:
            problems.append(f"{len(missing)} earlier trial(s) are not among the new spec's (first: {missing[0]}); "
                            "a smaller sample or a sample of a larger grid draws other points")
    return problems


def _base_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = list(dict.fromkeys([*before, *after]))
    return [f"base: {key} is {_shown(after, key)} (was {_shown(before, key)})" for key in keys
            if before.get(key) != after.get(key) or (key in before) != (key in after)]


def _grid_changes(before: dict[str, list[Any]], after: dict[str, list[Any]], varying: list[str]) -> list[str]:
    problems = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key, []), after.get(key, [])
        if key not in varying:
            if old != new:
                problems.append(f"grid: {key} is {new or 'not in the grid'} (was {old or 'not in the grid'})")
            continue
        dropped = [v for v in old if v not in new]
        if dropped:
            problems.append(f"grid: {key} drops {', '.join(map(str, dropped))}")
    return problems


def _shown(values: dict[str, Any], key: str) -> str:
    return repr(values[key]) if key in values else "not set"


def _keys(keys: Any) -> str:
    return ", ".join(keys) if isinstance(keys, list) and keys else "none"


def check_growth(sweep_dir: Path, old: dict[str, Any], new: dict[str, Any]) -> int:
    """The number of trials ``new`` adds to the sweep in ``sweep_dir``; ConfigError naming what else changed."""
    problems = growth_problems(old, new)
    if problems:
        raise ConfigError(f"{sweep_dir} holds another sweep: {'; '.join(problems)}. A spec may only add grid values, "
                          "seeds or sampled points to an existing sweep: choose a new --out, or delete that "
                          "directory to start over")
    return len(new["trials"]) - len(old["trials"])
