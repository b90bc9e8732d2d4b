"""fit --overwrite and sweep --overwrite: replace a run or sweep, never anything else, never one in use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.runs.lock import acquire

from synthetic import write_dataset

FIT_FAST = ["--hidden", "8", "--epochs", "1", "--val-size", "30", "--batch-size", "32", "--lr", "0.1", "--quiet"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


def fit(tiny: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(out), *extra])


def test_fit_overwrite_replaces_a_run(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert fit(tiny, out).exit_code == 0
    (out / "eval.json").write_text("{}")  # a file of the old run that the new one does not write
    refused = fit(tiny, out, "--seed", "1")
    assert refused.exit_code == 2 and "already exists" in refused.output  # never the default
    result = fit(tiny, out, "--seed", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert f"--overwrite: deleted the earlier run in {out}" in result.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 1 and not (out / "eval.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing left beside it
    assert fit(tiny, tmp_path / "new", "--overwrite").exit_code == 0  # nothing to replace: a new run


def test_overwrite_refuses_what_is_not_a_run(tiny: Path, tmp_path: Path) -> None:
    data = tmp_path / "photos"
    data.mkdir()
    (data / "holiday.jpg").write_bytes(b"not yours to delete")
    result = fit(tiny, data, "--overwrite")
    assert result.exit_code == 2 and "could be your data" in result.output
    assert (data / "holiday.jpg").read_bytes() == b"not yours to delete"
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, "--overwrite"])
    assert result.exit_code == 2 and "give --out RUN_DIR" in result.output


def test_overwrite_refuses_a_run_in_use(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert fit(tiny, out).exit_code == 0
    before = (out / "summary.json").read_bytes()
    with acquire(out, "run directory", "wait"):
        result = fit(tiny, out, "--overwrite", "--seed", "3")
    assert result.exit_code == 2 and "is in use by process" in result.output
    assert (out / "summary.json").read_bytes() == before


def test_sweep_overwrite_starts_over_and_refuses_a_run(tiny: Path, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps({"base": {"dataset": str(tiny), "hidden": [8], "epochs": 1, "val_size": 30},
                                "grid": {"lr": [0.05, 0.1]}}))
    other = tmp_path / "other.yaml"
    other.write_text(spec.read_text().replace("0.05", "0.2"))
    runner = CliRunner()
    args = ["--out", str(tmp_path / "sw"), "--quiet", "--workers", "1"]
    assert runner.invoke(cli, ["sweep", str(spec), *args]).exit_code == 0
    assert runner.invoke(cli, ["sweep", str(other), *args]).exit_code == 2  # another sweep: refused by default
    with acquire(tmp_path / "sw" / "lr=0.1,seed=0", "run directory", "wait"):  # a trial still being written
        busy = runner.invoke(cli, ["sweep", str(other), *args, "--overwrite"])
    assert busy.exit_code == 2 and "trial lr=0.1,seed=0" in busy.output
    result = runner.invoke(cli, ["sweep", str(other), *args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "sw").iterdir() if p.is_dir()) == ["lr=0.1,seed=0", "lr=0.2,seed=0"]
    assert fit(tiny, tmp_path / "run").exit_code == 0
    refused = runner.invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "run"), "--overwrite", "--quiet"])
    assert refused.exit_code == 2 and "is a run directory" in refused.output
    assert (tmp_path / "run" / "summary.json").exists()
