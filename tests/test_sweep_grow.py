"""Sweeps that grow: a spec that only adds grid values, seeds or sampled points runs only the new trials."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.sweep.spec import load_spec

from synthetic import write_dataset

BASE = {"hidden": [8], "epochs": 1, "val_size": 30, "batch_size": 32, "lr": 0.1, "init": "uniform"}
GRID = {"activation": ["logistic", "relu"], "init_range": [0.1, 1.0]}


def write_spec(path: Path, data: Path, grid: dict | None = None, base: dict | None = None, **top) -> Path:
    path.write_text(json.dumps({"base": {"dataset": str(data), **BASE, **(base or {})},
                                "grid": GRID if grid is None else grid, **top}))
    return path


def sweep(spec: Path, out: Path):
    return CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(out), "--quiet", "--workers", "2"])


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 2 x 2 x 2-seed sweep, then the same spec with a third seed into the same directory."""
    root = tmp_path_factory.mktemp("grow")
    tiny = write_dataset(root / "tiny")
    first = sweep(write_spec(root / "s2.yaml", tiny, seeds=2), root / "out")
    assert first.exit_code == 0, first.output
    before = {p.parent.name: p.stat().st_mtime_ns for p in (root / "out").glob("*/summary.json")}
    rows_before = (root / "out" / "results.jsonl").read_text().splitlines()
    second = sweep(write_spec(root / "s3.yaml", tiny, seeds=3), root / "out")
    return {"root": root, "tiny": tiny, "before": before, "rows_before": rows_before, "second": second}


def test_a_third_seed_runs_only_the_four_new_trials(grown: dict) -> None:
    out, second = grown["root"] / "out", grown["second"]
    assert second.exit_code == 0, second.output
    assert "8 of 12 trials finished earlier: skipped" in second.stderr
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/summary.json")}
    assert len(after) == 12 and {name: after[name] for name in grown["before"]} == grown["before"]
    assert sorted(set(after) - set(grown["before"])) == [
        "activation=logistic,init_range=0.1,seed=2", "activation=logistic,init_range=1.0,seed=2",
        "activation=relu,init_range=0.1,seed=2", "activation=relu,init_range=1.0,seed=2"]
    rows = (out / "results.jsonl").read_text().splitlines()
    assert len(rows) == 12 and set(grown["rows_before"]) <= set(rows)  # the earlier records, unchanged
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["trials"] for r in summary] == ["3"] * 4
    record = json.loads((out / "sweep.json").read_text())
    assert record["spec"]["seeds"] == [0, 1, 2] and record["grown_from"] == [8]
    assert (out / "spec.yaml").read_text() == (grown["root"] / "s3.yaml").read_text()


@pytest.mark.parametrize("change, says", [
    ({"base": {"lr": 0.2}}, "base: lr is 0.2 (was 0.1)"),
    ({"grid": {"activation": ["relu"], "init_range": [0.1, 1.0]}},
     "the varying keys change from activation, init_range to init_range"),
    ({"grid": {"activation": ["logistic", "relu", "tanh"], "init_range": [0.1, 0.3]}}, "grid: init_range drops 1.0"),
    ({"grid": {**GRID, "momentum": [0.5]}}, "grid: momentum is [0.5] (was not in the grid)"),
    ({"seeds": [0, 2]}, "seeds drops 1"),
])
def test_other_changes_are_refused_naming_the_difference(grown: dict, tmp_path: Path, change: dict,
                                                         says: str) -> None:
    copy = shutil.copytree(grown["root"] / "out", tmp_path / "out")
    top = {k: v for k, v in change.items() if k not in ("base", "grid")}
    spec = write_spec(tmp_path / "s.yaml", grown["tiny"], grid=change.get("grid"), base=change.get("base"),
                      **{"seeds": 3, **top})
    result = sweep(spec, copy)
    assert result.exit_code == 2 and "holds another sweep: " in result.stderr and says in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: ") and result.stderr.count("Error") == 1
    assert json.loads((copy / "sweep.json").read_text())["spec"]["seeds"] == [0, 1, 2]  # untouched


def test_a_larger_sample_keeps_the_smaller_ones_points(tmp_path: Path) -> None:
    grid = {"lr": [0.01, 0.02, 0.05, 0.1, 0.2], "init_range": [0.1, 0.3, 1.0]}
    tiny = write_dataset(tmp_path / "tiny")  # specs check that their data set exists
    names = [{t.name for t in load_spec(write_spec(tmp_path / f"s{n}.yaml", tiny, grid=grid, sample=n,
                                                   sample_seed=3)).trials} for n in range(1, 16)]
    assert all(smaller < larger for smaller, larger in zip(names, names[1:]))


def test_sampling_more_points_grows_the_sweep(tmp_path: Path) -> None:
    tiny = write_dataset(tmp_path / "tiny")
    grid = {"lr": [0.05, 0.1, 0.2], "init_range": [0.1, 1.0]}
    assert sweep(write_spec(tmp_path / "a.yaml", tiny, grid=grid, sample=2), tmp_path / "out").exit_code == 0
    result = sweep(write_spec(tmp_path / "b.yaml", tiny, grid=grid, sample=3), tmp_path / "out")
    assert result.exit_code == 0 and "2 of 3 trials finished earlier: skipped" in result.stderr
