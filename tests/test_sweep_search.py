"""mlptrain sweep with search: (Optuna): bad specs, pruning, Ctrl-C and an exact resume, a local Dask cluster.

Everything trains on the tiny synthetic data set (tests/synthetic.py); the
trials run in real worker processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.errors import ConfigError
from mlptrain.runs.table import find_runs
from mlptrain.sweep.space import load_search

from synthetic import write_dataset

optuna = pytest.importorskip("optuna")

BASE = {"hidden": [16], "epochs": 5, "val_size": 60, "batch_size": 32}
# lr 1e-5 does not learn in 5 epochs, 0.3 does: the median pruner has something to stop.
SPACE = {"lr": {"choice": [0.00001, 0.3]}, "momentum": {"uniform": [0.0, 0.9]}}


def write_spec(path: Path, data: Path, search: dict | None = None, base: dict | None = None, **top) -> Path:
    spec = {"base": {"dataset": str(data), **BASE, **(base or {})}, "search": SPACE if search is None else search,
            "trials": 8, "sampler": "random", **top}
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def rows(out: Path, without: tuple[str, ...] = ("wall_seconds", "blas_threads")) -> list[dict]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in without} for line in lines]


def study_states(out: Path) -> list[str]:
    from mlptrain.sweep.study import STUDY_NAME, storage

    study = optuna.load_study(study_name=STUDY_NAME, storage=storage(out))
    return [t.state.name for t in study.trials]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def pruned_search(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Eight trials on one local process, median pruner: (spec, sweep dir)."""
    root = tmp_path_factory.mktemp("search")
    spec = write_spec(root / "spec.yaml", tiny, pruner="median")
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(root / "out"), "--quiet", "--workers", "1",
                                      "--plot"])
    assert result.exit_code == 0, result.output
    return spec, root / "out"


# --- bad specs: one line each, before any trial ----------------------------------------------------------------

BAD = [
    ({"search": {"lr": {"loguniform": [0.01, 1]}}}, r"search: lr: unknown distribution 'loguniform'; did you mean "
     r"'log-uniform'\?"),
    ({"search": {"lr": {"log-uniform": [0, 1]}}}, r"search: lr: log-uniform needs bounds above 0, got low 0"),
    ({"search": {"lr": {"uniform": [0.5, 0.1]}}}, r"search: lr: uniform: low 0.5 must be below high 0.1"),
    ({"search": {"epochs": {"int": [3, 3]}}}, r"search: epochs: int: low 3 must be below high 3"),
    ({"search": {"lrr": {"uniform": [0.1, 0.5]}}}, r"unknown config key 'lrr'.*'lr'"),
    ({"search": {"activation": {"choice": ["relu", "relux"]}}}, r"invalid activation \(from .* search\): got 'relux'"),
    ({"search": {"momentum": {"uniform": [0.5, 1.5]}}}, r"invalid momentum \(from .* search\): got 1.5"),
    ({"search": {"batch_size": {"uniform": [16, 64]}}}, r"search: batch_size: uniform does not suit batch_size"),
    ({"search": {"hidden": {"depth": [0, 2], "width": [8, 64]}}}, r"search: hidden: depth takes \[low, high\]"),
    ({"grid": {"lr": [0.1, 0.2]}}, r"search: and grid: together"),
    ({"seeds": 3}, r"seeds: is for a grid"),
    ({"sampler": "grid"}, r"unknown sampler 'grid'; choose one of: tpe, random"),
    ({"pruner": "asha"}, r"unknown pruner 'asha'; choose one of: none, median, hyperband"),
    ({"trials": 0}, r"trials must be a whole number from 1"),
    ({"time_budget": -5}, r"time_budget must be a number of seconds above 0"),
    ({"base": {"val_size": 0}}, r"objective is the validation accuracy: val_size must be above 0"),
    ({"search": {"seed": {"int": [0, 9]}}}, r"search: seed: the seed is not searched"),
    ({"prune_after": 0}, r"prune_after must be a whole number of epochs from 1, got 0"),
    ({"prune_after": "2"}, r"prune_after must be a whole number of epochs from 1, got '2'"),
    ({"prune_after": 2, "pruner": "none"}, r"prune_after 2 with pruner: none prunes nothing"),
    ({"prune_after": 5, "pruner": "median"}, r"prune_after 5 is not below the trials' 5 epochs"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m.split(":")[0][:40] for _, m in BAD])
def test_a_bad_search_spec_is_one_clear_error(tmp_path: Path, tiny: Path, change: dict, message: str) -> None:
    spec = json.loads(write_spec(tmp_path / "s.yaml", tiny).read_text())
    for key, value in change.items():
        spec[key] = {**spec[key], **value} if key == "base" else value
    (tmp_path / "s.yaml").write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match=message):
        load_search(tmp_path / "s.yaml")


def test_a_bad_search_spec_stops_the_command_before_anything_is_written(tmp_path: Path, tiny: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny, search={"lr": {"log-uniform": [-1, 1]}})
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.output
    assert result.stderr.startswith("Error: ") and not (tmp_path / "out").exists()


def test_search_keys_in_a_grid_spec_are_refused(tmp_path: Path, tiny: Path) -> None:
    from mlptrain.sweep.spec import load_spec

    path = tmp_path / "g.yaml"
    path.write_text(json.dumps({"base": {"dataset": str(tiny)}, "grid": {"lr": [0.1, 0.2]}, "trials": 5}))
    with pytest.raises(ConfigError, match="trials: is for a search"):
        load_spec(path)


def test_missing_optuna_says_how_to_install_it(tmp_path: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    result = CliRunner().invoke(cli, ["sweep", str(write_spec(tmp_path / "s.yaml", tiny)), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr == "Error: a search needs Optuna: pip install 'mlptrain[search]'\n"
    assert not (tmp_path / "out").exists()


# --- a search that prunes ------------------------------------------------------------------------------------


def test_a_search_prunes_and_records_each_trial(pruned_search: tuple[Path, Path]) -> None:
    _, out = pruned_search
    records = rows(out)
    assert [r["trial"] for r in records] == [f"trial-{n:04d}" for n in range(8)]
    statuses = [r["status"] for r in records]
    assert study_states(out) == [{"complete": "COMPLETE", "pruned": "PRUNED"}[s] for s in statuses]
    pruned = [r for r in records if r["status"] == "pruned"]
    assert pruned and all(r["epochs_run"] < 5 and r["test_acc"] is None for r in pruned)
    assert all(r["params"]["lr"] == 0.00001 for r in pruned)  # only the hopeless learning rate
    assert all(r["epochs_run"] == 5 and r["test_acc"] is not None for r in records if r["status"] == "complete")
    for r in pruned:  # stopped at once: its run directory has no more epochs than it reported
        assert len((out / r["trial"] / "metrics.jsonl").read_text().splitlines()) == r["epochs_run"]
        assert not (out / r["trial"] / "summary.json").exists()
    assert "pruned" in (out / "summary.csv").read_text().splitlines()[0].split(",")
    listed = {r["name"]: r["status"] for r in find_runs([out])}  # mlptrain runs: pruned on purpose, not interrupted
    assert listed == {r["trial"]: r["status"] for r in records}
    assert (out / "search-history.png").stat().st_size > 0 and (out / "search-importance.png").exists()


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_prune_after_lets_every_trial_run_that_many_epochs(tiny: Path, tmp_path: Path, pruner: str) -> None:
    # The same space as pruned_search, where the hopeless lr is stopped after its first epoch.
    spec = write_spec(tmp_path / "spec.yaml", tiny, pruner=pruner, prune_after=3)
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"{pruner} pruner after 3 epochs" in result.output
    pruned = [r for r in rows(tmp_path / "out") if r["status"] == "pruned"]
    assert pruned and all(r["epochs_run"] >= 3 for r in pruned)
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["spec"]["prune_after"] == 3


def test_best_yaml_is_the_best_trials_whole_config(pruned_search: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = pruned_search
    best = max((r for r in rows(out) if r["status"] == "complete"), key=lambda r: r["best_val_acc"])
    text = (out / "best.yaml").read_text()
    assert text.startswith(f"# {best['trial']} of the search")
    config = yaml.safe_load(text)
    saved = yaml.safe_load((out / best["trial"] / "config.yaml").read_text())
    assert config == saved  # the trial's own config, key for key: ready for fit --config
    result = CliRunner().invoke(cli, ["fit", "--config", str(out / "best.yaml"), "--epochs", "1", "--out",
                                      str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output


def test_a_finished_search_run_again_adds_nothing_and_report_reprints_it(pruned_search: tuple[Path, Path]) -> None:
    spec, out = pruned_search
    before = rows(out)
    again = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(out), "--quiet", "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "8 of 8 trials finished earlier: skipped" in again.stderr
    assert rows(out) == before and len(study_states(out)) == 8
    report = CliRunner().invoke(cli, ["sweep", "--report", str(out)])
    assert report.exit_code == 0 and "8 of 8 trials recorded" in report.stdout
    assert "pruned" in report.stdout and "best config:" in report.stdout


def test_a_changed_search_is_refused(pruned_search: tuple[Path, Path], tmp_path: Path, tiny: Path) -> None:
    spec, out = pruned_search
    other = write_spec(tmp_path / "other.yaml", tiny, search={"lr": {"log-uniform": [0.01, 0.5]}}, pruner="median")
    result = CliRunner().invoke(cli, ["sweep", str(other), "--out", str(out), "--quiet"])
    assert result.exit_code == 2 and "holds another sweep: search is" in result.stderr
    assert "may only change trials: and time_budget:" in result.stderr
    grid = tmp_path / "grid.yaml"
    grid.write_text(json.dumps({"base": {"dataset": str(tiny), **BASE}, "grid": {"lr": [0.1, 0.2]}}))
    result = CliRunner().invoke(cli, ["sweep", str(grid), "--out", str(out), "--quiet"])
    assert result.exit_code == 2 and f"{out} holds a search, not a grid sweep" in result.stderr


# --- Ctrl-C and resume ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", [["--workers", "1"], ["--cluster", "local", "--workers", "1"]],
                         ids=["local-pool", "dask-local-cluster"])
def test_ctrl_c_then_the_same_command_resumes_exactly(tmp_path: Path, tiny: Path, where: list[str]) -> None:
    if "--cluster" in where:
        pytest.importorskip("distributed")
    # Slow trials (many epochs), no pruner: the interrupted trial must resume from its checkpoint.
    # A Dask trial asks every STOP_CHECK_SECONDS whether the sweep was stopped: its trials must outlast that.
    epochs = 300 if "--cluster" in where else 40
    spec = write_spec(tmp_path / "s.yaml", tiny, search={"lr": {"log-uniform": [0.01, 0.3]}},
                      base={"hidden": [32], "epochs": epochs}, trials=3, pruner="none", sampler="tpe")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def command(out: str) -> list[str]:
        return [sys.executable, "-m", "mlptrain", "sweep", str(spec), "--out", str(tmp_path / out), "--quiet", *where]

    process = subprocess.Popen(command("out"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "out" / "trial-0001" / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "run the same command again" in stderr
    assert study_states(tmp_path / "out") == ["COMPLETE", "RUNNING"]
    first = json.loads((tmp_path / "out" / "trial-0000" / "summary.json").read_text())

    done = subprocess.run(command("out"), capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 of 3 trials finished earlier: skipped" in done.stderr
    assert study_states(tmp_path / "out") == ["COMPLETE"] * 3  # none lost, none added twice
    assert json.loads((tmp_path / "out" / "trial-0000" / "summary.json").read_text()) == first  # not run again
    assert json.loads((tmp_path / "out" / "trial-0001" / "summary.json").read_text())["resumed"]

    if "--cluster" in where:
        return  # the rest is the same on Dask, and costs another search
    straight = subprocess.run(command("straight"), capture_output=True, text=True, env=env, timeout=120)
    assert straight.returncode == 0, straight.stderr
    same = ("wall_seconds", "blas_threads")
    assert rows(tmp_path / "out", same) == rows(tmp_path / "straight", same)  # the same draws, the same numbers


# --- Dask ---------------------------------------------------------------------------------------------------


def test_a_search_on_a_local_dask_cluster_draws_and_trains_as_locally(tmp_path: Path, tiny: Path) -> None:
    pytest.importorskip("distributed")
    spec = write_spec(tmp_path / "s.yaml", tiny, pruner="none", trials=4)
    outs = {}
    for name, where in (("local", ["--workers", "2"]), ("dask", ["--cluster", "local", "--workers", "2"])):
        result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / name), "--quiet",
                                          "--threads", "1", *where])
        assert result.exit_code == 0, result.output
        outs[name] = rows(tmp_path / name)
    # Random draws are seeded per trial number, so they do not depend on which trial finished first.
    assert outs["dask"] == outs["local"] and len(outs["dask"]) == 4


@pytest.mark.parametrize("name", ["search-mnist", "search-fashion"])
def test_the_shipped_searches_are_valid(name: str) -> None:
    from mlptrain.configfile import find_config

    plan = load_search(find_config(name))
    assert plan.pruner == "hyperband" and plan.trials >= 20 and plan.time_budget
    assert {dim.key for dim in plan.space} >= {"lr", "weight_decay", "dropout"}


def test_a_time_budget_stops_asking_and_a_rerun_continues(tmp_path: Path, tiny: Path) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny, base={"epochs": 1}, trials=2, pruner="none", time_budget=1e-6)
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "time_budget of 1e-06 s reached: 0 of 2 trials done; run the same command again" in result.stderr
    assert study_states(tmp_path / "out") == []
    longer = json.loads(spec.read_text()) | {"time_budget": 600}
    spec.write_text(json.dumps(longer))  # the budget may change on a re-run
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "out"), "--quiet", "--workers", "1"])
    assert result.exit_code == 0 and "reached" not in result.stderr, result.output
    assert study_states(tmp_path / "out") == ["COMPLETE", "COMPLETE"]
